//! Builds `.npy` files byte by byte for the data tests: any header dict, well-formed or not (the product's
//! writer, `npy::header_bytes`, writes only valid ones).

/// An NPY file of format `major`.0 with header dict `dict` (padded as numpy pads) and raw `data`.
pub fn npy(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let pre = if major == 1 { 10 } else { 12 };
    let mut h = dict.to_string();
    h.push_str(&" ".repeat((64 - (pre + h.len() + 1) % 64) % 64));
    h.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}
