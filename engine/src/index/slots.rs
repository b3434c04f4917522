//! The index's slot array: zeroed memory for the open-addressing tables,
//! aligned and advised for transparent huge pages when large. One of the
//! two modules with `unsafe` (the other is the HSTable maps,
//! `hstable/map.rs`).

#![allow(unsafe_code)]

/// Bytes of a transparent huge page on x86-64 and aarch64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// A zero-initialised array of `[u64; 2]` (the index's slots). Arrays of at
/// least 2 MiB are 2 MiB-aligned and advised to use transparent huge pages:
/// a random index probe then costs one TLB entry per 2 MiB instead of per
/// 4 KiB, which roughly halves its latency under virtualisation. Only whole
/// huge pages inside the array are advised, so no RAM outside it is used.
pub struct SlotArray {
    ptr: std::ptr::NonNull<[u64; 2]>,
    len: usize,
    align: usize,
}

// SAFETY: SlotArray owns its allocation exclusively (like a Box<[T]>) and
// [u64; 2] is Send + Sync.
unsafe impl Send for SlotArray {}
// SAFETY: as above; shared access only hands out `&[[u64; 2]]`.
unsafe impl Sync for SlotArray {}

impl Default for SlotArray {
    fn default() -> Self {
        SlotArray {
            ptr: std::ptr::NonNull::dangling(),
            len: 0,
            align: std::mem::align_of::<[u64; 2]>(),
        }
    }
}

impl std::fmt::Debug for SlotArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotArray({})", self.len)
    }
}

impl SlotArray {
    /// `len` zeroed slots. Aborts on allocation failure, like `Vec`.
    pub fn zeroed(len: usize) -> SlotArray {
        if len == 0 {
            return SlotArray::default();
        }
        let bytes = len.checked_mul(16).expect("slot array size overflow");
        let align = if bytes >= HUGE_PAGE {
            HUGE_PAGE
        } else {
            std::mem::align_of::<[u64; 2]>()
        };
        let layout = std::alloc::Layout::from_size_align(bytes, align).expect("slot array layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = std::ptr::NonNull::new(raw.cast::<[u64; 2]>()) else {
            std::alloc::handle_alloc_error(layout)
        };
        if align == HUGE_PAGE {
            let whole = bytes / HUGE_PAGE * HUGE_PAGE;
            // SAFETY: advises a range inside our own allocation (`raw` is
            // 2 MiB-aligned, `whole <= bytes`); madvise does not access the
            // memory. Failure (e.g. THP disabled) is harmless: ignored.
            unsafe {
                libc::madvise(raw.cast(), whole, libc::MADV_HUGEPAGE);
            }
        }
        // SAFETY: `raw` is valid for `bytes` writes; zeroing after madvise
        // lets the first touch of each huge page allocate a huge page.
        unsafe { std::ptr::write_bytes(raw, 0, bytes) };
        SlotArray { ptr, len, align }
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.len * 16
    }
}

impl std::ops::Deref for SlotArray {
    type Target = [[u64; 2]];
    #[inline]
    fn deref(&self) -> &[[u64; 2]] {
        // SAFETY: `ptr` is valid for `len` initialised (zeroed or written)
        // elements, or dangling with len 0, which is allowed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for SlotArray {
    #[inline]
    fn deref_mut(&mut self) -> &mut [[u64; 2]] {
        // SAFETY: as in `deref`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SlotArray {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        let layout = std::alloc::Layout::from_size_align(self.len * 16, self.align)
            .expect("slot array layout");
        // SAFETY: allocated in `zeroed` with exactly this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
    }
}
