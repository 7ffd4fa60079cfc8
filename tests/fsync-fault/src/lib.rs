//! An `LD_PRELOAD` library for the cluster fault runs (tests/tests/raft_faults.rs): while
//! the file named by `ACCELBENCH_FAIL_FSYNC_WHILE` exists, every `fsync` and `fdatasync`
//! of the process fails with `EIO`, as on a failing disk; otherwise they are libc's.
//!
//! Only the answer is faked: the data may still reach the disk, as it may on a real
//! failing device. What a caller may no longer do is count on it, or retry and believe a
//! later success (the page cache may have dropped the dirty pages): the coordinator's
//! store stops for good on the first failure. Losing synced-looking data is the layer A
//! simulation's job, where the storage model keeps synced and unsynced writes apart.
//!
//! Linux and glibc only (`RTLD_NEXT`, `__errno_location`), like the runs that load it.

use std::ffi::{c_int, c_void, CStr};

/// The environment variable naming the flag file.
const FLAG: &CStr = c"ACCELBENCH_FAIL_FSYNC_WHILE";

type SyncFn = unsafe extern "C" fn(c_int) -> c_int;

/// Whether the flag file exists now (looked up on every call: cheap next to an fsync, and
/// the runs switch the fault on and off while the process runs).
fn failing() -> bool {
    // SAFETY: getenv and access get NUL-terminated strings; the process never calls
    // setenv on this variable, so the pointer getenv returns stays valid.
    unsafe {
        let path = libc::getenv(FLAG.as_ptr());
        !path.is_null() && libc::access(path, libc::F_OK) == 0
    }
}

fn fail_with(errno: c_int) -> c_int {
    // SAFETY: __errno_location returns this thread's errno, always valid to write.
    unsafe { *libc::__errno_location() = errno };
    -1
}

/// libc's `name` (the next definition after this library's), called on `fd`, unless the
/// fault is on.
fn sync_or_fail(name: &CStr, fd: c_int) -> c_int {
    if failing() {
        return fail_with(libc::EIO);
    }
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; a non-null result for
    // fsync or fdatasync is a function of exactly this signature.
    unsafe {
        let next: *mut c_void = libc::dlsym(libc::RTLD_NEXT, name.as_ptr());
        if next.is_null() {
            return fail_with(libc::ENOSYS);
        }
        let next = std::mem::transmute::<*mut c_void, SyncFn>(next);
        next(fd)
    }
}

/// Replaces libc's `fsync` in a process that preloads this library.
#[no_mangle]
pub extern "C" fn fsync(fd: c_int) -> c_int {
    sync_or_fail(c"fsync", fd)
}

/// Replaces libc's `fdatasync` (Rust's `File::sync_data`, redb's commit).
#[no_mangle]
pub extern "C" fn fdatasync(fd: c_int) -> c_int {
    sync_or_fail(c"fdatasync", fd)
}
