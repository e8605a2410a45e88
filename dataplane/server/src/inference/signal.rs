//! Two single-shard synchronisation primitives for the batcher, executor-agnostic (no runtime types): a oneshot
//! reply slot and a wake-up flag. Both live on one shard (`Rc`), never cross threads.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    sender_alive: bool,
}

/// The sending half of a oneshot: the batch worker puts a request's result here.
pub struct ReplySender<T>(Rc<RefCell<Slot<T>>>);

/// The receiving half: the command awaits it. Resolves to `None` if the sender was dropped without a value
/// (the model was deleted mid-flight).
pub struct ReplyReceiver<T>(Rc<RefCell<Slot<T>>>);

/// A new oneshot pair.
pub fn reply_channel<T>() -> (ReplySender<T>, ReplyReceiver<T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
        sender_alive: true,
    }));
    (ReplySender(Rc::clone(&slot)), ReplyReceiver(slot))
}

impl<T> ReplySender<T> {
    /// Delivers the value and wakes the receiver.
    pub fn send(self, value: T) {
        let waker = {
            let mut slot = self.0.borrow_mut();
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = self.0.borrow_mut();
            slot.sender_alive = false;
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for ReplyReceiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = self.0.borrow_mut();
        if let Some(value) = slot.value.take() {
            return Poll::Ready(Some(value));
        }
        if !slot.sender_alive {
            return Poll::Ready(None);
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A wake-up flag: `notify` sets it and wakes the one waiter; `notified()` resolves once it is set, and clears it.
#[derive(Clone, Default)]
pub struct Notify(Rc<RefCell<(bool, Option<Waker>)>>);

impl Notify {
    /// Sets the flag and wakes the waiter, if any.
    pub fn notify(&self) {
        let waker = {
            let mut state = self.0.borrow_mut();
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Resolves when the flag is set (at once if it already is), clearing it.
    pub fn notified(&self) -> Notified {
        Notified(self.clone())
    }
}

/// The future [`Notify::notified`] returns.
pub struct Notified(Notify);

impl Future for Notified {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = (self.0).0.borrow_mut();
        if state.0 {
            state.0 = false;
            return Poll::Ready(());
        }
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    #[test]
    fn reply_delivers_or_reports_a_dropped_sender() {
        let (tx, rx) = reply_channel();
        tx.send(7);
        assert_eq!(block_on(rx), Some(7));
        let (tx, rx) = reply_channel::<u8>();
        drop(tx);
        assert_eq!(block_on(rx), None);
    }

    #[test]
    fn notify_before_wait_is_not_lost() {
        let notify = Notify::default();
        notify.notify();
        block_on(notify.notified());
        let mut second = Box::pin(notify.notified());
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        assert!(
            second
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending(),
            "the flag was cleared"
        );
    }
}
