// The libtorch calls ganzoo needs that tch 0.24 does not bind. Every function catches C++ exceptions and
// returns their message through `err` (a malloc'ed string the caller frees with gz_free_string), so no C++
// exception crosses into Rust. Tensors are tch's handles (`at::Tensor*`).
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <cstdlib>
#include <mutex>
#include <cstring>
#include <string>
#include <vector>

#ifdef GANZOO_GLOO
#include <torch/csrc/autograd/custom_function.h>
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
    // c10d's process-wide flight recorder (a debugging trace of collectives) is not safe with several process
    // groups enqueueing from several threads of one process (as the shim's tests run two ranks): a crash in
    // its map of group statuses. ganzoo does not read its dumps: it is off unless the user asks for it.
    static std::once_flag fr_off;
    std::call_once(fr_off, [] { setenv("TORCH_FR_BUFFER_SIZE", "0", 0); });
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

// Synchronized batch norm (torch.nn.SyncBatchNorm's arithmetic, in training): the batch statistics of every
// rank's rows together. Forward: each rank's per-channel count, mean and M2 (two passes) gathered and combined
// in rank order in float64 (Chan et al.); y = (x - mean)·invstd·w + b; running statistics updated with the
// unbiased variance. Backward: the per-channel sums of dy and dy·x̂ summed over ranks give dx; the weight's and
// bias's gradients stay this rank's own (the engine averages every gradient across ranks afterwards).
namespace {
struct SyncBn : public torch::autograd::Function<SyncBn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, at::Tensor w, at::Tensor b,
                            at::Tensor running_mean, at::Tensor running_var, double momentum, double eps,
                            int64_t group) {
    auto* g = reinterpret_cast<GzGroup*>(group);
    const auto c = x.size(1);
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = c;
    auto xd = x.to(at::kDouble);
    const double n_local = static_cast<double>(x.numel() / c);
    auto mean_l = xd.mean(dims);
    auto m2_l = (xd - mean_l.view(shape)).pow(2).sum(dims);
    auto mine = at::cat({at::full({1}, n_local, xd.options()), mean_l, m2_l}).contiguous();
    std::vector<at::Tensor> in{mine};
    std::vector<std::vector<at::Tensor>> out(1);
    if (g) {
      for (int r = 0; r < g->world; ++r) out[0].push_back(at::empty_like(mine));
      wait(g, g->pg->allgather(out, in));
    } else {
      out[0].push_back(mine);  // one process: the same arithmetic, nothing to exchange
    }
    double n = 0;
    at::Tensor mean = at::zeros({c}, xd.options()), m2 = at::zeros({c}, xd.options());
    for (size_t r = 0; r < out[0].size(); ++r) {
      auto& t = out[0][r];
      double nr = t[0].item<double>();
      auto mr = t.narrow(0, 1, c), m2r = t.narrow(0, 1 + c, c);
      if (n == 0) {
        mean = mr.clone();
        m2 = m2r.clone();
      } else {
        auto delta = mr - mean;
        mean = mean + delta * (nr / (n + nr));
        m2 = m2 + m2r + delta.pow(2) * (n * nr / (n + nr));
      }
      n += nr;
    }
    auto var = m2 / n;
    auto invstd = (var + eps).rsqrt();
    {
      at::NoGradGuard ng;
      if (running_mean.defined()) {
        running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
        running_var.mul_(1 - momentum).add_((m2 / std::max(n - 1, 1.0)).to(running_var.scalar_type()), momentum);
      }
    }
    // As libtorch's CPU kernel: float mean and invstd, y = x·α + β with α = invstd·w, β = b − mean·α.
    auto meanf = mean.to(x.scalar_type()), invstdf = invstd.to(x.scalar_type());
    auto alpha = invstdf * w.detach(), beta = b.detach() - meanf * alpha;
    auto y = at::addcmul(beta.view(shape), x, alpha.view(shape));
    ctx->save_for_backward({x, w, meanf, invstdf});
    ctx->saved_data["group"] = group;
    ctx->saved_data["n"] = n;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0], w = saved[1], meanf = saved[2], invstdf = saved[3];
    auto* g = reinterpret_cast<GzGroup*>(ctx->saved_data["group"].toInt());
    const double n = ctx->saved_data["n"].toDouble();
    auto dy = grads[0];
    const auto c = x.size(1);
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = c;
    // As libtorch's CPU kernel: sums of dy and dy·(x − mean) in float64, dx = (dy − (x − mean)·k − Σdy/N)·invstd·w
    // with k = Σdy·(x − mean)·invstd²/N; here both sums over every rank's rows.
    auto xmu = x - meanf.view(shape);
    auto dyd = dy.to(at::kDouble);
    auto sum_dy = dyd.sum(dims), dot = (dyd * xmu.to(at::kDouble)).sum(dims);
    auto both = at::cat({sum_dy, dot}).contiguous();
    std::vector<at::Tensor> v{both};
    if (g) wait(g, g->pg->allreduce(v));
    auto invstd_d = invstdf.to(at::kDouble);
    auto grad_mean = (both.narrow(0, 0, c) / n).to(x.scalar_type());
    auto k = (both.narrow(0, c, c) * invstd_d * invstd_d / n).to(x.scalar_type());
    auto dx = (dy - xmu * k.view(shape) - grad_mean.view(shape)) * (invstdf * w).view(shape);
    auto sum_dy_xhat = (dot * invstd_d).to(x.scalar_type());
    auto sum_dyf = sum_dy.to(x.scalar_type());
    return {dx, sum_dy_xhat, sum_dyf, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};
}  // namespace

// Synchronized batch norm over the ranks of `gp` (training mode; null: one process, the same arithmetic);
// running statistics updated in place.
at::Tensor* gz_sync_batch_norm(void* gp, const at::Tensor* x, const at::Tensor* w, const at::Tensor* b,
                               const at::Tensor* running_mean, const at::Tensor* running_var, double momentum,
                               double eps, char** err) {
  GZ_TRY(err, nullptr, {
    return new at::Tensor(SyncBn::apply(*x, *w, *b, *running_mean, *running_var, momentum, eps,
                                        reinterpret_cast<int64_t>(gp)));
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

// Waits until some rank sets `key` (at most timeout_ms).
int gz_store_wait(void* gp, const char* key, long long timeout_ms, char** err) {
  GZ_TRY(err, -1, {
    auto* g = static_cast<GzGroup*>(gp);
    g->store->wait({std::string(key)}, std::chrono::milliseconds(timeout_ms));
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
