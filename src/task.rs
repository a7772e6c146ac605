//! The ready queue: callbacks that can run now, in FIFO order.
//!
//! A task is a boxed `FnOnce(&mut EventLoop)`. The loop runs the queue in
//! snapshot batches: a pass runs exactly the tasks that were queued when the
//! pass began, so a task queued by a running task waits for the next pass,
//! after timers and IO were looked at again (guarantee 4). Tasks are popped
//! before they run, so a panicking task leaves the rest of the queue intact.

use std::collections::VecDeque;

use crate::EventLoop;

/// A callback queued with [`EventLoop::call_soon`].
pub(crate) type Task = Box<dyn FnOnce(&mut EventLoop)>;

/// FIFO of ready tasks.
#[derive(Default)]
pub(crate) struct ReadyQueue {
    tasks: VecDeque<Task>,
}

impl ReadyQueue {
    #[inline]
    pub(crate) fn push(&mut self, task: Task) {
        self.tasks.push_back(task);
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Task> {
        self.tasks.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}
