//! Giving memory back after large transient allocations.
//!
//! Applying a full update of a large tree parses a body of hundreds of megabytes into records
//! that die right after; glibc keeps most of that freed memory in its arenas, so a peer's
//! resident size would stay at twice what its tree needs. Trimming after such an event returns
//! it.

/// Allocations from this size up get pages of their own, returned to the system when freed.
///
/// glibc starts at this value but raises it (up to 32 MiB) each time such a block is freed, so
/// after a scan or a first full update the large transient buffers of later ones (lists of
/// records, sorted copies) come from the heap instead, among the tree's small allocations that
/// outlive them; the heap then stays fragmented (about 50 bytes a file on a node of 200,000 files
/// after its start-up scan). Fixing the threshold keeps them out.
const MMAP_THRESHOLD: i32 = 128 << 10;

/// Sets the allocator up for a long-lived daemon; call once at start, before other threads.
pub fn configure() {
    // SAFETY: mallopt only changes allocator parameters; called before any other thread runs.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Entries above which an event is worth a trim.
pub const TRIM_ABOVE: usize = 10_000;

/// Returns freed heap memory to the system (as blocking work: it walks the heap).
pub async fn trim(blocking: crate::blocking::Blocking) {
    let _ = blocking
        .run(|| {
            // SAFETY: malloc_trim only releases free memory of the allocator; it has no
            // preconditions.
            #[cfg(target_env = "gnu")]
            unsafe {
                libc::malloc_trim(0);
            }
        })
        .await;
}
