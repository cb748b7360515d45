//! The pool: a fixed set of worker threads fed from one channel, so a
//! flood of clients cannot become a flood of threads. The server queues
//! each connection it admits as a job; the next free worker serves it.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use transcript::{Failure, OrFail};

/// A unit of work for the pool.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of worker threads fed from one channel.
pub struct Pool {
    jobs: Sender<Job>,
    workers: Vec<JoinHandle<()>>,
}

// ANCHOR: pool
impl Pool {
    /// Starts `size` threads, each running the loop `work`.
    pub fn start(
        size: usize,
        work: fn(&Mutex<Receiver<Job>>),
    ) -> Result<Pool, Failure> {
        let (jobs, queue) = channel::<Job>();
        // One receiver, shared: each job goes to exactly one worker.
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = Vec::with_capacity(size);
        for _ in 0..size {
            let queue = Arc::clone(&queue);
            let spawned = thread::Builder::new().spawn(move || work(&queue));
            workers.push(spawned.or_fail("thread::spawn")?);
        }
        Ok(Pool { jobs, workers })
    }

    /// Queues a job; the next free worker runs it. (Sending fails only when
    /// every worker has gone, which nothing here makes happen.)
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        let _ = self.jobs.send(Box::new(job));
    }

    /// Closes the channel and waits for every worker to finish.
    pub fn finish(self) {
        drop(self.jobs);
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}
// ANCHOR_END: pool

// ANCHOR: worker
/// A worker: takes the next job and runs it, until the channel is closed.
pub fn worker(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock guard is a temporary of this `let` statement, dropped at
        // its `;`: other workers take jobs while this one runs its own.
        // (lock() fails only if a thread panicked while holding it, and no
        // thread holds it for anything but recv.)
        let next = queue.lock().unwrap().recv();
        match next {
            Ok(job) => job(),
            // Closed and empty: the server is shutting down.
            Err(_) => return,
        }
    }
}
// ANCHOR_END: worker
