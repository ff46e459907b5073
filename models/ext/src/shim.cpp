// The libtorch calls ganzoo needs that tch 0.24 does not bind. Every function catches C++ exceptions and
// returns their message through `err` (a malloc'ed string the caller frees with gz_free_string), so no C++
// exception crosses into Rust. Tensors are tch's handles (`at::Tensor*`).
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef GANZOO_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace {
char* dup(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}
}  // namespace

#define GZ_TRY(err, fail, ...)                 \
  try {                                        \
    __VA_ARGS__                                \
  } catch (const std::exception& e) {          \
    *err = dup(e.what());                      \
    return fail;                               \
  } catch (...) {                              \
    *err = dup("unknown C++ exception");       \
    return fail;                               \
  }

extern "C" {

void gz_free_string(char* s) { std::free(s); }

// torch.nn.functional.leaky_relu(x, slope), with its own backward.
at::Tensor* gz_leaky_relu(const at::Tensor* x, double slope, char** err) {
  GZ_TRY(err, nullptr, return new at::Tensor(at::leaky_relu(*x, slope));)
}

// The autocast dtype of a device type (c10::DeviceType code), as a c10::ScalarType code.
int gz_autocast_dtype(int device_type, char** err) {
  GZ_TRY(err, -1, return static_cast<int>(at::autocast::get_autocast_dtype(static_cast<c10::DeviceType>(device_type)));)
}

int gz_set_autocast_dtype(int device_type, int dtype, char** err) {
  GZ_TRY(err, -1, at::autocast::set_autocast_dtype(static_cast<c10::DeviceType>(device_type), static_cast<c10::ScalarType>(dtype)); return 0;)
}

int gz_autocast_enabled(int device_type, char** err) {
  GZ_TRY(err, -1, return at::autocast::is_autocast_enabled(static_cast<c10::DeviceType>(device_type)) ? 1 : 0;)
}

int gz_set_autocast_enabled(int device_type, int on, char** err) {
  GZ_TRY(err, -1, at::autocast::set_autocast_enabled(static_cast<c10::DeviceType>(device_type), on != 0); return 0;)
}

int gz_autocast_cache_enabled() { return at::autocast::is_autocast_cache_enabled() ? 1 : 0; }

void gz_set_autocast_cache_enabled(int on) { at::autocast::set_autocast_cache_enabled(on != 0); }

int gz_has_gloo() {
#ifdef GANZOO_GLOO
  return 1;
#else
  return 0;
#endif
}

#ifdef GANZOO_GLOO
struct GzGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout;
  int world;
};

// Rendezvous through a TCPStore at host:port (the server on rank 0 unless torchrun's agent already hosts it),
// then a Gloo process group of `world` ranks whose collectives fail after timeout_ms.
void* gz_group_new(const char* host, int port, int rank, int world, long long timeout_ms, int agent_store,
                   const char* prefix, const char* iface, char** err) {
  GZ_TRY(err, nullptr, {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = rank == 0 && !agent_store;
    o.numWorkers = agent_store ? std::nullopt : std::optional<std::size_t>(world);
    o.waitWorkers = false;
    o.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    auto store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    std::string ifname(iface ? iface : "");
    opts->devices.push_back(ifname.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                           : c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    opts->threads = 1;
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
    return new GzGroup{store, pg, timeout, world};
  })
}

void gz_group_free(void* g) { delete static_cast<GzGroup*>(g); }

static void wait(GzGroup* g, const c10::intrusive_ptr<c10d::Work>& w) {
  if (!w->wait(g->timeout)) throw std::runtime_error("the collective did not complete");
}

// Sums (average != 0: averages) the tensors across ranks in place, through flat buckets of at most
// bucket_bytes bytes (a tensor larger than that is a bucket of its own). All tensors share one dtype and device.
int gz_all_reduce(void* gp, at::Tensor** ts, int n, int average, long long bucket_bytes, char** err) {
  GZ_TRY(err, -1, {
    auto* g = static_cast<GzGroup*>(gp);
    int i = 0;
    while (i < n) {
      std::vector<at::Tensor> flat;
      long long bytes = 0;
      int j = i;
      while (j < n && (j == i || bytes + (long long)ts[j]->nbytes() <= bucket_bytes)) {
        if (ts[j]->scalar_type() != ts[i]->scalar_type() || ts[j]->device() != ts[i]->device())
          throw std::runtime_error("all_reduce: tensors of different dtypes or devices");
        bytes += ts[j]->nbytes();
        flat.push_back(ts[j]->reshape({-1}));
        ++j;
      }
      std::vector<at::Tensor> bucket{at::cat(flat)};
      wait(g, g->pg->allreduce(bucket));
      if (average) bucket[0].div_(g->world);
      long long off = 0;
      for (int k = i; k < j; ++k) {
        auto numel = ts[k]->numel();
        ts[k]->view({-1}).copy_(bucket[0].narrow(0, off, numel));
        off += numel;
      }
      i = j;
    }
    return 0;
  })
}

// Copies rank `root`'s tensors to every rank, in place.
int gz_broadcast(void* gp, at::Tensor** ts, int n, int root, char** err) {
  GZ_TRY(err, -1, {
    auto* g = static_cast<GzGroup*>(gp);
    c10d::BroadcastOptions o;
    o.rootRank = root;
    for (int i = 0; i < n; ++i) {
      std::vector<at::Tensor> v{*ts[i]};
      wait(g, g->pg->broadcast(v, o));
    }
    return 0;
  })
}

// Every rank's `input` (same shape everywhere), stacked along a new first dimension into a new tensor.
at::Tensor* gz_all_gather(void* gp, const at::Tensor* input, char** err) {
  GZ_TRY(err, nullptr, {
    auto* g = static_cast<GzGroup*>(gp);
    std::vector<at::Tensor> in{input->contiguous()};
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < g->world; ++r) out[0].push_back(at::empty_like(in[0]));
    wait(g, g->pg->allgather(out, in));
    return new at::Tensor(at::stack(out[0]));
  })
}

int gz_barrier(void* gp, char** err) {
  GZ_TRY(err, -1, {
    auto* g = static_cast<GzGroup*>(gp);
    wait(g, g->pg->barrier());
    return 0;
  })
}

// The key/value store the group met through (for a rank's heartbeat and its name in errors).
int gz_store_set(void* gp, const char* key, const char* value, char** err) {
  GZ_TRY(err, -1, {
    auto* g = static_cast<GzGroup*>(gp);
    std::string v(value);
    g->store->set(std::string(key), std::vector<uint8_t>(v.begin(), v.end()));
    return 0;
  })
}

// The value of `key`, or nullptr without an error when it is not set.
char* gz_store_get(void* gp, const char* key, char** err) {
  GZ_TRY(err, nullptr, {
    auto* g = static_cast<GzGroup*>(gp);
    std::string k(key);
    if (!g->store->check({k})) return nullptr;
    auto v = g->store->get(k);
    return dup(std::string(v.begin(), v.end()));
  })
}
#endif
}
