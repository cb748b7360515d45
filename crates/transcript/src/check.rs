//! Compares the events a demo narrated with the system calls `strace` saw.
//! (Filled in by the kernel check; see tests/course/kernel.rs.)
