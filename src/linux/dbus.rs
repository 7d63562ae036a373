//! A minimal, synchronous D-Bus client: connect to the user's session bus,
//! authenticate (SASL EXTERNAL), and make method calls with the few argument
//! types burrow sends to systemd (strings, booleans, `u32` arrays, variants,
//! arrays of structs). Wire format: the D-Bus specification, "Message
//! Protocol" (https://dbus.freedesktop.org/doc/dbus-specification.html).
//!
//! Why not zbus: its blocking API runs an async executor on background
//! threads that stay alive in the very process that forks the container
//! right after, and it brings about 60 crates for the two calls burrow makes.
//! This client has no threads, no fd passing and no signals: one request,
//! then read until its reply.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{SocketAddr, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

/// Replies larger than this are refused (systemd's replies are tiny).
const MAX_MESSAGE: usize = 1 << 20;
/// How long one call may take before the bus counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(10);

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

// Header field codes.
const F_PATH: u8 = 1;
const F_INTERFACE: u8 = 2;
const F_MEMBER: u8 = 3;
const F_ERROR_NAME: u8 = 4;
const F_REPLY_SERIAL: u8 = 5;
const F_DESTINATION: u8 = 6;
const F_SIGNATURE: u8 = 8;

#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset)")]
    NoBus,
    #[error("D-Bus session bus {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("D-Bus: {0}")]
    Io(#[from] std::io::Error),
    #[error("D-Bus: {0}")]
    Protocol(String),
    /// The callee answered with an error.
    #[error("{name}: {message}")]
    Remote { name: String, message: String },
}

pub type Result<T> = std::result::Result<T, DbusError>;

fn protocol<T>(what: impl Into<String>) -> Result<T> {
    Err(DbusError::Protocol(what.into()))
}

/// Where the session bus is: `DBUS_SESSION_BUS_ADDRESS` (its first
/// `unix:path=` or `unix:abstract=` entry), else `$XDG_RUNTIME_DIR/bus`, as
/// sd-bus and libdbus look for it.
pub fn session_address(
    env_address: Option<&str>,
    runtime_dir: Option<&str>,
) -> Option<(String, SocketAddr)> {
    if let Some(list) = env_address.filter(|a| !a.is_empty()) {
        for entry in list.split(';') {
            let Some(params) = entry.strip_prefix("unix:") else {
                continue;
            };
            for kv in params.split(',') {
                let addr = match kv.split_once('=') {
                    Some(("path", p)) => SocketAddr::from_pathname(unescape(p)).ok(),
                    Some(("abstract", n)) => {
                        use std::os::linux::net::SocketAddrExt;
                        SocketAddr::from_abstract_name(unescape(n).as_bytes()).ok()
                    }
                    _ => None,
                };
                if let Some(a) = addr {
                    return Some((entry.to_string(), a));
                }
            }
        }
        return None;
    }
    let path = PathBuf::from(runtime_dir.filter(|d| !d.is_empty())?).join("bus");
    let shown = format!("unix:path={}", path.display());
    SocketAddr::from_pathname(path).ok().map(|a| (shown, a))
}

/// D-Bus addresses escape bytes as %XX.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Builds a message body (or header) in D-Bus's little-endian marshalling.
/// Alignment is relative to the start of the buffer, which is where the
/// header starts and, padded to 8, where the body starts.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }
    pub fn byte(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bool(&mut self, v: bool) {
        self.u32(u32::from(v));
    }
    /// `s` and `o`.
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// `g`.
    pub fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// The start of a struct or dict entry.
    pub fn open_struct(&mut self) {
        self.pad(8);
    }
    /// An array whose elements (written by `f`) align to `elem_align`: its
    /// length counts from the first element, after that padding.
    pub fn array(&mut self, elem_align: usize, f: impl FnOnce(&mut Self)) {
        self.u32(0);
        let len_at = self.buf.len() - 4;
        self.pad(elem_align);
        let start = self.buf.len();
        f(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
    pub fn variant(&mut self, v: &Value) {
        match v {
            Value::Str(s) => {
                self.signature("s");
                self.str(s);
            }
            Value::Bool(b) => {
                self.signature("b");
                self.bool(*b);
            }
            Value::U32s(list) => {
                self.signature("au");
                self.array(4, |w| list.iter().for_each(|x| w.u32(*x)));
            }
        }
    }
}

/// A property value burrow sends (inside a variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Str(&'a str),
    Bool(bool),
    U32s(&'a [u32]),
}

/// Reads D-Bus marshalled data of either byte order.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], big: bool) -> Self {
        Reader { buf, pos: 0, big }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return protocol("message truncated");
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn align(&mut self, a: usize) -> Result<()> {
        let n = (a - self.pos % a) % a;
        self.take(n).map(|_| ())
    }
    pub fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn text(&mut self, len: usize) -> Result<String> {
        let b = self.take(len + 1)?;
        String::from_utf8(b[..len].to_vec()).or_else(|_| protocol("a string is not UTF-8"))
    }
    /// `s` or `o`.
    pub fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        self.text(n)
    }
    pub fn signature(&mut self) -> Result<String> {
        let n = self.byte()? as usize;
        self.text(n)
    }
    /// One value of a basic type (`s`, `o`, `g`, `u`), as text: enough for
    /// header fields and the string replies burrow reads.
    pub fn basic(&mut self, sig: &str) -> Result<String> {
        match sig {
            "s" | "o" => self.str(),
            "g" => self.signature(),
            "u" => Ok(self.u32()?.to_string()),
            other => protocol(format!("unexpected type {other:?}")),
        }
    }
}

/// A reply from the bus.
#[derive(Debug)]
pub struct Reply {
    pub signature: String,
    pub body: Vec<u8>,
    pub big_endian: bool,
}

impl Reply {
    /// The reply's first argument, of a basic type, or inside a variant.
    pub fn first(&self) -> Result<String> {
        let mut r = Reader::new(&self.body, self.big_endian);
        match self.signature.as_str() {
            "v" => {
                let sig = r.signature()?;
                r.basic(&sig)
            }
            s => r.basic(&s[..s.len().min(1)]),
        }
    }
}

/// A message as read off the socket: type, header fields, body.
struct Incoming {
    kind: u8,
    reply_serial: Option<u32>,
    error_name: Option<String>,
    signature: String,
    body: Vec<u8>,
    big_endian: bool,
}

/// The header fields (code, value as text) of a message's `header`: its
/// 16 fixed bytes, then the fields array, without the padding after it.
fn header_fields(header: &[u8], big: bool) -> Result<Vec<(u8, String)>> {
    let mut r = Reader::new(header, big);
    r.take(16)?;
    let mut fields = Vec::new();
    while r.pos < r.buf.len() {
        r.align(8)?;
        let code = r.byte()?;
        let sig = r.signature()?;
        fields.push((code, r.basic(&sig)?));
    }
    Ok(fields)
}

/// A method call, marshalled.
pub fn method_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
    signature: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut w = Writer::default();
    w.byte(b'l');
    w.byte(METHOD_CALL);
    w.byte(0); // flags
    w.byte(1); // protocol version
    w.u32(body.len() as u32);
    w.u32(serial);
    w.array(8, |w| {
        let mut field = |code: u8, sig: &str, value: &str| {
            w.open_struct();
            w.byte(code);
            w.signature(sig);
            if sig == "g" {
                w.signature(value);
            } else {
                w.str(value);
            }
        };
        field(F_PATH, "o", path);
        field(F_INTERFACE, "s", interface);
        field(F_MEMBER, "s", member);
        field(F_DESTINATION, "s", destination);
        if !signature.is_empty() {
            field(F_SIGNATURE, "g", signature);
        }
    });
    w.pad(8);
    w.buf.extend_from_slice(body);
    w.buf
}

/// A connection to the session bus, named by the bus (`Hello`).
pub struct Bus {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    serial: u32,
    /// The address connected to, for messages.
    pub address: String,
    /// Our name on the bus, from `Hello` (":1.42").
    pub unique_name: String,
}

impl Bus {
    /// Connect to the session bus of this user, from the environment.
    pub fn session() -> Result<Bus> {
        let env = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
        let run = std::env::var("XDG_RUNTIME_DIR").ok();
        Bus::connect(env.as_deref(), run.as_deref())
    }

    /// Connect to the bus at a `DBUS_SESSION_BUS_ADDRESS`-style address,
    /// or `runtime_dir`/bus without one (see `session_address`).
    pub fn connect(env_address: Option<&str>, runtime_dir: Option<&str>) -> Result<Bus> {
        let (shown, addr) =
            session_address(env_address, runtime_dir).ok_or_else(|| match env_address {
                Some(a) => DbusError::Protocol(format!(
                    "DBUS_SESSION_BUS_ADDRESS={a} has no unix socket address"
                )),
                None => DbusError::NoBus,
            })?;
        let connect_err = |source| DbusError::Connect {
            addr: shown.clone(),
            source,
        };
        let stream = UnixStream::connect_addr(&addr).map_err(connect_err)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut bus = Bus {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            serial: 0,
            address: shown,
            unique_name: String::new(),
        };
        bus.authenticate()?;
        bus.unique_name = bus
            .call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                "",
                &[],
            )?
            .first()?;
        Ok(bus)
    }

    /// SASL EXTERNAL with our uid: the bus checks it against the socket's
    /// peer credentials.
    fn authenticate(&mut self) -> Result<()> {
        let uid = nix::unistd::getuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.writer
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        (&mut self.reader)
            .take(4096)
            .read_line(&mut line)
            .map_err(DbusError::Io)?;
        if !line.starts_with("OK ") {
            return protocol(format!("authentication refused: {}", line.trim()));
        }
        self.writer.write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    /// Call a method and wait for its reply; other messages (signals such
    /// as NameAcquired) are skipped.
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<Reply> {
        self.serial += 1;
        let serial = self.serial;
        let msg = method_call(
            serial,
            destination,
            path,
            interface,
            member,
            signature,
            body,
        );
        self.writer.write_all(&msg)?;
        loop {
            let m = self.read_message()?;
            if m.reply_serial != Some(serial) {
                continue;
            }
            match m.kind {
                METHOD_RETURN => {
                    return Ok(Reply {
                        signature: m.signature,
                        body: m.body,
                        big_endian: m.big_endian,
                    })
                }
                ERROR => {
                    let message = if m.signature.starts_with('s') {
                        Reader::new(&m.body, m.big_endian).str().unwrap_or_default()
                    } else {
                        String::new()
                    };
                    return Err(DbusError::Remote {
                        name: m.error_name.unwrap_or_else(|| "unknown error".into()),
                        message,
                    });
                }
                _ => continue,
            }
        }
    }

    fn read_message(&mut self) -> Result<Incoming> {
        let mut fixed = [0u8; 16];
        self.reader.read_exact(&mut fixed)?;
        let big = match fixed[0] {
            b'l' => false,
            b'B' => true,
            b => return protocol(format!("bad byte-order mark {b:#x}")),
        };
        let mut r = Reader::new(&fixed, big);
        r.take(4)?;
        let body_len = r.u32()? as usize;
        r.u32()?; // serial
        let fields_len = r.u32()? as usize;
        if body_len > MAX_MESSAGE || fields_len > MAX_MESSAGE {
            return protocol("message too large");
        }
        let header_len = (16 + fields_len).next_multiple_of(8);
        let mut header = fixed.to_vec();
        header.resize(header_len, 0);
        self.reader.read_exact(&mut header[16..])?;
        let mut body = vec![0u8; body_len];
        self.reader.read_exact(&mut body)?;

        let mut m = Incoming {
            kind: fixed[1],
            reply_serial: None,
            error_name: None,
            signature: String::new(),
            body,
            big_endian: big,
        };
        for (code, value) in header_fields(&header[..16 + fields_len], big)? {
            match code {
                F_REPLY_SERIAL => m.reply_serial = value.parse().ok(),
                F_ERROR_NAME => m.error_name = Some(value),
                F_SIGNATURE => m.signature = value,
                _ => {}
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn addresses_as_sd_bus_finds_them() {
        let (shown, a) = session_address(Some("unix:path=/run/user/1000/bus"), None).unwrap();
        assert_eq!(shown, "unix:path=/run/user/1000/bus");
        assert_eq!(a.as_pathname().unwrap(), Path::new("/run/user/1000/bus"));
        // First usable entry; escapes undone; a guid is ignored.
        let (_, a) = session_address(
            Some("tcp:host=x,port=1;unix:path=/tmp/a%20b,guid=0123"),
            Some("/run/user/5"),
        )
        .unwrap();
        assert_eq!(a.as_pathname().unwrap(), Path::new("/tmp/a b"));
        let (_, a) = session_address(None, Some("/run/user/7")).unwrap();
        assert_eq!(a.as_pathname().unwrap(), Path::new("/run/user/7/bus"));
        assert!(session_address(None, None).is_none());
        assert!(session_address(Some("tcp:host=x"), Some("/run/user/7")).is_none());
    }

    #[test]
    fn a_method_call_is_marshalled_as_the_spec_says() {
        // Hello, as dbus-monitor --binary shows libdbus sending it (serial 1).
        let m = method_call(
            1,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            "",
            &[],
        );
        assert_eq!(&m[..4], b"l\x01\x00\x01");
        assert_eq!(&m[4..8], &0u32.to_le_bytes()); // body length
        assert_eq!(&m[8..12], &1u32.to_le_bytes()); // serial
        let fields_len = u32::from_le_bytes(m[12..16].try_into().unwrap()) as usize;
        assert_eq!(m.len(), (16 + fields_len).next_multiple_of(8));
        // First field: PATH, signature "o", the path.
        assert_eq!(&m[16..20], b"\x01\x01o\x00");
        assert_eq!(&m[20..24], &21u32.to_le_bytes());
        assert_eq!(&m[24..45], b"/org/freedesktop/DBus");
        // The reader parses back what the writer wrote.
        assert_eq!(
            header_fields(&m[..16 + fields_len], false).unwrap(),
            [
                (F_PATH, "/org/freedesktop/DBus".to_string()),
                (F_INTERFACE, "org.freedesktop.DBus".into()),
                (F_MEMBER, "Hello".into()),
                (F_DESTINATION, "org.freedesktop.DBus".into()),
            ]
        );
    }

    #[test]
    fn arrays_count_bytes_after_their_padding() {
        // a(sv) with one entry: length 4, pad to 8, struct(s, v(b)).
        let mut w = Writer::default();
        w.array(8, |w| {
            w.open_struct();
            w.str("Delegate");
            w.variant(&Value::Bool(true));
        });
        let b = &w.buf;
        assert_eq!(&b[0..4], &(b.len() as u32 - 8).to_le_bytes());
        assert_eq!(&b[4..8], &[0, 0, 0, 0]); // padding to the struct
        assert_eq!(&b[8..12], &8u32.to_le_bytes());
        assert_eq!(&b[12..21], b"Delegate\0");
        assert_eq!(&b[21..24], b"\x01b\0");
        assert_eq!(&b[24..28], &1u32.to_le_bytes());
        // An empty array of structs still pads to 8 after its length.
        let mut w = Writer::default();
        w.byte(7);
        w.array(8, |_| {});
        assert_eq!(w.buf, [7, 0, 0, 0, 0, 0, 0, 0]);
        // au: a variant holding two pids.
        let mut w = Writer::default();
        w.variant(&Value::U32s(&[1, 2]));
        assert_eq!(w.buf, b"\x02au\0\x08\0\0\0\x01\0\0\0\x02\0\0\0");
    }

    #[test]
    fn replies_are_read_in_either_byte_order() {
        let reply = Reply {
            signature: "v".into(),
            body: b"\x01s\0\0\0\0\0\x03/a/\0".to_vec(),
            big_endian: true,
        };
        assert_eq!(reply.first().unwrap(), "/a/");
        let reply = Reply {
            signature: "o".into(),
            body: b"\x05\0\0\0/job1\0".to_vec(),
            big_endian: false,
        };
        assert_eq!(reply.first().unwrap(), "/job1");
        let short = Reply {
            signature: "s".into(),
            body: b"\x09\0\0\0abc".to_vec(),
            big_endian: false,
        };
        assert!(short.first().is_err());
    }
}
