//! The course's own tests: every lesson's transcript as a reviewed
//! snapshot, the interactive programs against each other and against peers
//! nobody here wrote, and the book checked against the code.
//!
//! One test binary for the whole course keeps the build short; each lesson
//! has a module of its own.

mod many_clients;
mod support;

mod book;
mod diagrams;
mod diffs;
mod hostile;
mod kernel;
mod leaks;
mod lesson_01;
mod lesson_02;
mod lesson_03;
mod lesson_04;
mod lesson_05;
mod lesson_06;
mod lesson_07;
mod lesson_08;
mod lesson_09;
mod lesson_10;
mod lesson_11;
mod lesson_12;
mod lesson_13;
mod lesson_14;
mod lesson_15;
mod lesson_16;
mod lesson_17;
mod lesson_18;
mod listings;
mod manpages;
mod rendered;
mod sysctls;
mod trace;
mod try_it;
mod wire;
mod zh;
