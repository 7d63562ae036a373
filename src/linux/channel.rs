//! The one wire between burrow's forked processes: a typed channel whose
//! every message is one JSON datagram on a close-on-exec SOCK_SEQPACKET
//! socket pair, optionally carrying descriptors (SCM_RIGHTS).
//!
//! The message type is the protocol's own (the layer that speaks it defines
//! it): a `Sender<M>` sends only `M`, a `Receiver<M>` reads only `M`, so a
//! message of another protocol is a compile error, not a surprise at run
//! time.
//!
//! Each channel runs one way: the sending end goes to one process, the
//! receiving end to another. EOF is itself a word: the receiver sees it
//! once every copy of the sending end is closed, which includes a process
//! that exec'd (its close-on-exec end went away). A datagram is never
//! interleaved with another, and a reader gets whole messages only.

use std::io::{self, IoSlice, IoSliceMut};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest message a receiver takes; messages are far smaller (a
/// failure's text, a pid), and a larger one arrives truncated and garbled.
const MAX_MESSAGE: usize = 64 * 1024;

/// The most descriptors one message carries.
const MAX_FDS: usize = 4;

/// Why a message did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The sender is gone (exited, exec'd or killed) without sending it.
    #[error("the other process closed the channel")]
    Closed,
    #[error("reading the channel: {0}")]
    Io(#[from] io::Error),
    #[error("garbled message {0:?}")]
    Garbled(String),
}

/// A new channel: the sending and the receiving end of one close-on-exec
/// socket pair.
pub fn channel<M>() -> io::Result<(Sender<M>, Receiver<M>)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Sender::from(a), Receiver::from(b)))
}

/// The sending end.
#[derive(Debug)]
pub struct Sender<M> {
    sock: OwnedFd,
    kind: PhantomData<fn(&M)>,
}

impl<M> From<OwnedFd> for Sender<M> {
    fn from(sock: OwnedFd) -> Self {
        Sender {
            sock,
            kind: PhantomData,
        }
    }
}

impl<M> AsRawFd for Sender<M> {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl<M: Serialize> Sender<M> {
    /// Send one message. An error means the receiver is gone.
    pub fn send(&mut self, m: &M) -> io::Result<()> {
        self.send_with(m, &[])
    }

    /// Send one message, for a sender that has nobody left to tell when the
    /// receiver is gone.
    pub fn tell(&mut self, m: M) {
        let _ = self.send(&m);
    }

    /// Send one message with `fds` attached: the receiver gets its own
    /// copies.
    pub fn send_with(&mut self, m: &M, fds: &[BorrowedFd]) -> io::Result<()> {
        let bytes = serde_json::to_vec(m).map_err(io::Error::other)?;
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        loop {
            let sent = if raw.is_empty() {
                // write(2), not sendmsg(2): a sender may already run under
                // a seccomp filter made for the program it is about to
                // exec, which lets write through.
                nix::unistd::write(&self.sock, &bytes).map(drop)
            } else {
                let iov = [IoSlice::new(&bytes)];
                let rights = [ControlMessage::ScmRights(&raw)];
                sendmsg::<()>(
                    self.sock.as_raw_fd(),
                    &iov,
                    &rights,
                    MsgFlags::MSG_NOSIGNAL,
                    None,
                )
                .map(drop)
            };
            match sent {
                Ok(()) => return Ok(()),
                Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The receiving end.
#[derive(Debug)]
pub struct Receiver<M> {
    sock: OwnedFd,
    kind: PhantomData<fn() -> M>,
}

impl<M> From<OwnedFd> for Receiver<M> {
    fn from(sock: OwnedFd) -> Self {
        Receiver {
            sock,
            kind: PhantomData,
        }
    }
}

impl<M> AsRawFd for Receiver<M> {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl<M> AsFd for Receiver<M> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl<M: DeserializeOwned> Receiver<M> {
    /// The next message; blocks until one arrives or the sender is gone.
    pub fn recv(&mut self) -> Result<M, ChannelError> {
        // Descriptors sent along with a message nobody asked them of are
        // closed here.
        self.recv_with().map(|(m, _)| m)
    }

    /// The next message and the descriptors that came with it.
    pub fn recv_with(&mut self) -> Result<(M, Vec<OwnedFd>), ChannelError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (len, truncated, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fds = Vec::new();
                    for c in msg.cmsgs().map_err(io::Error::from)? {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            for fd in raw {
                                // SAFETY: the kernel just installed `fd` in
                                // our table for this message; nothing else
                                // owns it.
                                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                    }
                    break (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC), fds);
                }
                Err(nix::Error::EINTR) => {}
                Err(e) => return Err(io::Error::from(e).into()),
            }
        };
        if len == 0 {
            return Err(ChannelError::Closed);
        }
        let text = || String::from_utf8_lossy(&buf[..len]).into_owned();
        if truncated {
            return Err(ChannelError::Garbled(text()));
        }
        match serde_json::from_slice(&buf[..len]) {
            Ok(m) => Ok((m, fds)),
            Err(_) => Err(ChannelError::Garbled(text())),
        }
    }

    /// Wait until every holder of the sending end has closed it (or died):
    /// a word that needs no send, so none can fail in a sender whose
    /// receiver is gone. Messages meanwhile are passed over.
    pub fn wait_closed(&mut self) -> Result<(), ChannelError> {
        loop {
            match self.recv() {
                Err(ChannelError::Closed) => return Ok(()),
                Err(ChannelError::Garbled(_)) | Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The exec rule: `None` when the channel closed without a message
    /// (the other process exec'd, its close-on-exec end went away), else
    /// the message it sent instead.
    pub fn wait_exec(&mut self) -> Result<Option<M>, ChannelError> {
        match self.recv() {
            Err(ChannelError::Closed) => Ok(None),
            Ok(m) => Ok(Some(m)),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Word {
        Hello,
        Number(i32),
        Text(String),
    }

    #[test]
    fn wait_closed_returns_once_every_copy_of_the_sender_is_closed() {
        let (mut tx, mut rx) = channel::<Word>().unwrap();
        let copy = tx.sock.try_clone().unwrap();
        tx.send(&Word::Hello).unwrap();
        drop(tx);
        let waiter = std::thread::spawn(move || rx.wait_closed());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "a copy still holds the channel open");
        drop(copy);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn messages_arrive_whole_in_order_and_eof_means_exec() {
        let (mut tx, mut rx) = channel::<Word>().unwrap();
        tx.send(&Word::Hello).unwrap();
        tx.send(&Word::Number(42)).unwrap();
        tx.tell(Word::Text("x".repeat(10_000)));
        drop(tx);
        assert_eq!(rx.recv().unwrap(), Word::Hello);
        assert_eq!(rx.recv().unwrap(), Word::Number(42));
        assert_eq!(
            rx.wait_exec().unwrap(),
            Some(Word::Text("x".repeat(10_000)))
        );
        assert_eq!(rx.wait_exec().unwrap(), None);
        assert!(matches!(rx.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn a_descriptor_travels_with_its_message() {
        let (mut tx, mut rx) = channel::<Word>().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        tx.send_with(&Word::Number(1), &[f.as_fd()]).unwrap();
        tx.send(&Word::Number(2)).unwrap();
        let (m, fds) = rx.recv_with().unwrap();
        assert_eq!((m, fds.len()), (Word::Number(1), 1));
        let (m, fds) = rx.recv_with().unwrap();
        assert_eq!((m, fds.len()), (Word::Number(2), 0));
    }

    #[test]
    fn a_message_of_another_shape_is_garbled() {
        let (mut tx, rx) = channel::<i32>().unwrap();
        tx.send(&7).unwrap();
        let mut words: Receiver<Word> = Receiver::from(rx.sock);
        assert!(matches!(words.recv(), Err(ChannelError::Garbled(_))));
    }
}
