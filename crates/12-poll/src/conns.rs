//! The open connections, found by descriptor number.

use std::os::fd::RawFd;

use crate::conn::Conn;

// ANCHOR: conns
/// The kernel gives each new descriptor the lowest number free (`man 2
/// open`), so the numbers stay dense, and a `Vec` indexed by them costs one
/// slot per connection: no tree node or hash bucket around each one.
#[derive(Default)]
pub struct Conns {
    slots: Vec<Option<Conn>>,
    open: usize,
}
// ANCHOR_END: conns

impl Conns {
    pub fn get(&self, fd: RawFd) -> Option<&Conn> {
        self.slots.get(usize::try_from(fd).ok()?)?.as_ref()
    }

    pub fn get_mut(&mut self, fd: RawFd) -> Option<&mut Conn> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    pub fn insert(&mut self, fd: RawFd, conn: Conn) {
        let Ok(i) = usize::try_from(fd) else { return };
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].replace(conn).is_none() {
            self.open += 1;
        }
    }

    pub fn remove(&mut self, fd: RawFd) -> Option<Conn> {
        let conn = self.slots.get_mut(usize::try_from(fd).ok()?)?.take()?;
        self.open -= 1;
        Some(conn)
    }

    pub fn len(&self) -> usize {
        self.open
    }

    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Every connection, by ascending descriptor number.
    pub fn iter(&self) -> impl Iterator<Item = (RawFd, &Conn)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i as RawFd, c.as_ref()?)))
    }

    /// Every connection, by ascending descriptor number.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (RawFd, &mut Conn)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| Some((i as RawFd, c.as_mut()?)))
    }
}
