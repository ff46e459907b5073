//! FNV-1a, 64 bits: the config hash a checkpoint keeps and the content key of cached reference features.
//! Not cryptographic; it names what was hashed, it does not guard against forgery.

/// An FNV-1a hasher.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf29ce484222325)
    }
}

impl Fnv {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x100000001b3);
        }
    }

    /// Writes a length-prefixed field, so that ("ab", "c") and ("a", "bc") hash apart.
    pub fn field(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    /// The hash as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// FNV-1a of a text, as 16 hex digits.
pub fn text_hash(text: &str) -> String {
    let mut h = Fnv::default();
    h.write(text.as_bytes());
    h.hex()
}
