//! Memory hints to the kernel for the few large buffers a run fills once and reuses.

/// Ask for transparent huge pages (2 MiB) over the whole 2 MiB pages inside `len` bytes at
/// `start`: a buffer of tens of MiB filled once then costs a few dozen page faults instead of
/// thousands of 4 KiB ones. A hint only: nothing happens where the kernel does not offer
/// huge pages, or off Linux.
pub fn prefer_huge_pages(start: *const u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let begin = (start as usize).div_ceil(HUGE) * HUGE;
        let end = (start as usize + len) / HUGE * HUGE;
        if end > begin {
            // SAFETY: the range lies inside an allocation the caller owns; MADV_HUGEPAGE only
            // changes how the kernel backs it, not its contents or its validity.
            unsafe {
                libc::madvise(begin as *mut libc::c_void, end - begin, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, len);
}
