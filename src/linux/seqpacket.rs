//! Unix SOCK_SEQPACKET sockets (unix(7)): connection-oriented, message
//! boundaries kept, EOF when the peer closes, and a descriptor carried with
//! a message (SCM_RIGHTS). A user network's switch and its members talk
//! over them.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    accept4, bind, connect, listen, recvmsg, sendmsg, socket, AddressFamily, Backlog,
    ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
};

fn new_socket(flags: SockFlag) -> nix::Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | flags,
        None,
    )
}

/// A non-blocking listener bound at `path` (which must not exist).
pub fn listen_at(path: &Path) -> nix::Result<OwnedFd> {
    let sock = new_socket(SockFlag::SOCK_NONBLOCK)?;
    bind(sock.as_raw_fd(), &UnixAddr::new(path)?)?;
    listen(&sock, Backlog::new(64)?)?;
    Ok(sock)
}

/// Accept one pending connection (blocking mode), if any.
pub fn accept(listener: &OwnedFd) -> nix::Result<OwnedFd> {
    let fd = accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: accept4 just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A blocking connection to the listener at `path`.
pub fn connect_to(path: &Path) -> nix::Result<OwnedFd> {
    let sock = new_socket(SockFlag::empty())?;
    connect(sock.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(sock)
}

/// Send one message, with `fd` attached when given.
pub fn send(sock: RawFd, msg: &[u8], fd: Option<RawFd>) -> nix::Result<()> {
    let iov = [IoSlice::new(msg)];
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let cmsgs: Vec<ControlMessage> = if fds.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(&fds)]
    };
    sendmsg::<()>(sock, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Receive one message into `buf`: its length (0 at EOF) and the
/// descriptor that came with it.
pub fn recv(sock: RawFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut got = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed `fd` in our table for
                // this message; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    Ok((msg.bytes, got))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_boundaries_and_carry_a_descriptor() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.sock");
        let l = listen_at(&p).unwrap();
        let c = connect_to(&p).unwrap();
        let s = accept(&l).unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        send(c.as_raw_fd(), b"one", None).unwrap();
        send(c.as_raw_fd(), b"two", Some(f.as_raw_fd())).unwrap();
        let mut buf = [0u8; 16];
        let (n, fd) = recv(s.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((&buf[..n], fd.is_none()), (&b"one"[..], true));
        let (n, fd) = recv(s.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((&buf[..n], fd.is_some()), (&b"two"[..], true));
        drop(c);
        assert_eq!(recv(s.as_raw_fd(), &mut buf).unwrap().0, 0);
    }
}
