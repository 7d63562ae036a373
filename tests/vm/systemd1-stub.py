#!/usr/bin/python3 -IS
"""The one part of PID 1's org.freedesktop.systemd1 that a user's systemd needs
on the system bus, for the tests/vm guest in `--login systemd` mode (where PID 1
is tests/vm/guest-init.sh, not systemd).

A login session's processes live in user-UID.slice/session-N.scope, the user
manager's units in user-UID.slice/user@UID.service. When a process of the
session asks `systemd --user` for a transient scope (systemd-run --user --scope,
podman, StartTransientUnit with PIDs), the user manager cannot move it there
itself: cgroup v2 wants write access to cgroup.procs of the common ancestor,
user-UID.slice, which is root's. systemd --user then asks the system manager,
over the system bus, to do it: AttachProcessesToUnit("", SUBCGROUP, [PID])
(unit_attach_pid_to_cgroup_via_bus() in systemd's src/core/cgroup.c). This
stub answers that call the way systemd 252 does (bus_unit_method_attach_processes()
in src/core/dbus-unit.c), with the same checks, and refuses everything else.
Making user-UID.slice/cgroup.procs the user's instead would let any process of
the user hop between the session and user@UID.service without asking anyone,
which a real host does not allow.

The "unit" of a process is the first *.service or *.scope in its cgroup path,
as systemd's own units are laid out: for the user manager, user@UID.service.
Its uid (systemd's ref_uid) is the UID in user@UID.service; other units have none.

Plain D-Bus over the socket, standard library only: the guest starts this
under TCG, where importing dbus-python or GLib would take seconds. Prints
"ready" on stdout once it owns the name, then a line per call on stderr.
The bus socket is /run/dbus/system_bus_socket, or the first argument (to try
it on a private dbus-daemon).
"""
import errno
import os
import re
import socket
import struct
import sys

BUS = sys.argv[1] if len(sys.argv) > 1 else "/run/dbus/system_bus_socket"
CGROUP_ROOT = "/sys/fs/cgroup"
NAME = "org.freedesktop.systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 1
# header field codes
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE = range(1, 9)
FIELD_TYPES = {PATH: "o", INTERFACE: "s", MEMBER: "s", ERROR_NAME: "s", REPLY_SERIAL: "u",
               DESTINATION: "s", SENDER: "s", SIGNATURE: "g"}


def log(msg):
    print(f"systemd1-stub: {msg}", file=sys.stderr, flush=True)


class BusError(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.name = name


def pad(n, align):
    return -n % align


class Writer:
    """Marshals the few types used here (little endian)."""

    def __init__(self):
        self.buf = bytearray()

    def align(self, n):
        self.buf += b"\0" * pad(len(self.buf), n)

    def byte(self, v):
        self.buf += bytes([v])

    def u32(self, v):
        self.align(4)
        self.buf += struct.pack("<I", v)

    def string(self, v):  # s and o
        data = v.encode()
        self.u32(len(data))
        self.buf += data + b"\0"

    def signature(self, v):
        data = v.encode()
        self.buf += bytes([len(data)]) + data + b"\0"


class Reader:
    def __init__(self, buf, endian):
        self.buf, self.pos, self.e = buf, 0, endian

    def align(self, n):
        self.pos += pad(self.pos, n)

    def byte(self):
        self.pos += 1
        return self.buf[self.pos - 1]

    def u32(self):
        self.align(4)
        (v,) = struct.unpack_from(self.e + "I", self.buf, self.pos)
        self.pos += 4
        return v

    def string(self):
        n = self.u32()
        v = self.buf[self.pos:self.pos + n].decode()
        self.pos += n + 1
        return v

    def signature(self):
        n = self.byte()
        v = self.buf[self.pos:self.pos + n].decode()
        self.pos += n + 1
        return v

    def value(self, sig):
        if sig in ("s", "o"):
            return self.string()
        if sig == "g":
            return self.signature()
        if sig == "u":
            return self.u32()
        raise ValueError(f"cannot read type {sig}")


class Bus:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.rbuf = b""
        self.serial = 0
        self.pending = []  # messages read while waiting for a reply
        uid = str(os.geteuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        line = self.readline()
        if not line.startswith(b"OK "):
            raise RuntimeError(f"bus refused authentication: {line!r}")
        self.sock.sendall(b"BEGIN\r\n")
        self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello")

    def readline(self):
        while b"\r\n" not in self.rbuf:
            self.fill()
        line, self.rbuf = self.rbuf.split(b"\r\n", 1)
        return line

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the bus closed the connection")
        self.rbuf += data

    def take(self, n):
        while len(self.rbuf) < n:
            self.fill()
        data, self.rbuf = self.rbuf[:n], self.rbuf[n:]
        return data

    def read_message(self):
        fixed = self.take(16)
        endian = {ord("l"): "<", ord("B"): ">"}[fixed[0]]
        mtype, flags = fixed[1], fixed[2]
        body_len, serial, fields_len = struct.unpack_from(endian + "III", fixed, 4)
        rest = self.take(fields_len + pad(16 + fields_len, 8) + body_len)
        r = Reader(fixed + rest, endian)
        r.pos = 16
        fields = {}
        while r.pos < 16 + fields_len:
            r.align(8)
            code = r.byte()
            sig = r.signature()
            fields[code] = r.value(sig)
        body = Reader((fixed + rest)[16 + fields_len + pad(16 + fields_len, 8):], endian)
        return {"type": mtype, "flags": flags, "serial": serial, "fields": fields, "body": body}

    def send(self, mtype, fields, sig="", body=b"", flags=0):
        self.serial += 1
        if sig:
            fields = {**fields, SIGNATURE: sig}
        w = Writer()
        w.buf += b"l" + bytes([mtype, flags, 1]) + struct.pack("<II", len(body), self.serial)
        h = Writer()
        for code, value in fields.items():
            h.align(8)
            h.byte(code)
            h.signature(FIELD_TYPES[code])
            if FIELD_TYPES[code] == "u":
                h.u32(value)
            elif FIELD_TYPES[code] == "g":
                h.signature(value)
            else:
                h.string(value)
        w.u32(len(h.buf))
        w.buf += h.buf
        w.align(8)
        self.sock.sendall(bytes(w.buf) + body)
        return self.serial

    def call(self, dest, path, iface, member, sig="", body=b""):
        serial = self.send(METHOD_CALL, {PATH: path, INTERFACE: iface, MEMBER: member,
                                         DESTINATION: dest}, sig, body)
        while True:
            m = self.read_message()
            if m["fields"].get(REPLY_SERIAL) == serial and m["type"] in (METHOD_RETURN, ERROR):
                if m["type"] == ERROR:
                    raise BusError(m["fields"].get(ERROR_NAME), f"{member} failed")
                return m["body"]
            self.pending.append(m)

    def next_message(self):
        return self.pending.pop(0) if self.pending else self.read_message()

    def reply(self, m, sig="", body=b""):
        self.send(METHOD_RETURN, {REPLY_SERIAL: m["serial"], DESTINATION: m["fields"][SENDER]}, sig, body)

    def error(self, m, name, text):
        w = Writer()
        w.string(text)
        self.send(ERROR, {REPLY_SERIAL: m["serial"], DESTINATION: m["fields"][SENDER], ERROR_NAME: name},
                  "s", bytes(w.buf))


def dbus_call_u(bus, member, sender):
    w = Writer()
    w.string(sender)
    return bus.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                    member, "s", bytes(w.buf)).u32()


def cgroup_of(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].rstrip("\n")
    raise BusError("org.freedesktop.DBus.Error.Failed", f"process {pid} has no cgroup v2 path")


def unit_cgroup(path):
    """The cgroup of the unit PID 1 would see the process in, and its uid."""
    parts = path.strip("/").split("/")
    for i, part in enumerate(parts):
        if part.endswith((".service", ".scope")):
            m = re.fullmatch(r"user@(\d+)\.service", part)
            return "/" + "/".join(parts[:i + 1]), int(m.group(1)) if m else None
    return None, None


def real_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise BusError("org.freedesktop.DBus.Error.Failed", f"no Uid for process {pid}")


def attach_processes_to_unit(bus, m):
    body = m["body"]
    unit_name, subcgroup = body.string(), body.string()
    n = body.u32()
    body.align(4)
    end = body.pos + n
    pids = []
    while body.pos < end:
        pids.append(body.u32())

    sender = m["fields"][SENDER]
    sender_uid = dbus_call_u(bus, "GetConnectionUnixUser", sender)
    sender_pid = dbus_call_u(bus, "GetConnectionUnixProcessID", sender)
    if unit_name:
        # Only the caller's own unit ("") is what systemd --user asks for.
        raise BusError("org.freedesktop.systemd1.NoSuchUnit", f"Unit {unit_name} not known to this stub.")
    unit, unit_uid = unit_cgroup(cgroup_of(sender_pid))
    if unit is None:
        raise BusError("org.freedesktop.systemd1.NoUnitForPID", f"PID {sender_pid} does not belong to any loaded unit.")
    if subcgroup:
        if not subcgroup.startswith("/"):
            raise BusError("org.freedesktop.DBus.Error.InvalidArgs",
                           f"Control group path is not absolute: {subcgroup}")
        if subcgroup != "/" and any(p in ("", ".", "..") for p in subcgroup[1:].split("/")):
            raise BusError("org.freedesktop.DBus.Error.InvalidArgs",
                           f"Control group path is not normalized: {subcgroup}")
    if unit_uid is None:
        # Only user@UID.service is delegated here (systemd checks Delegate=).
        raise BusError("org.freedesktop.DBus.Error.InvalidArgs",
                       "Process migration not available on non-delegated units.")
    for i, pid in enumerate(pids):
        if pid == 0:
            pids[i] = pid = sender_pid
        if pid == 1:
            raise BusError("org.freedesktop.DBus.Error.InvalidArgs", "Process 1 cannot be moved.")
        try:
            process_uid = real_uid(pid)
        except FileNotFoundError:
            raise BusError("System.Error.ESRCH", f"Process {pid} does not exist.") from None
        if sender_uid != 0:
            if process_uid != sender_uid:
                raise BusError("org.freedesktop.DBus.Error.AccessDenied",
                               f"Process {pid} not owned by client's UID. Refusing.")
            if process_uid != unit_uid:
                raise BusError("org.freedesktop.DBus.Error.AccessDenied",
                               f"Process {pid} not owned by target unit's UID. Refusing.")
    target = CGROUP_ROOT + unit + (subcgroup if subcgroup != "/" else "")
    for pid in pids:
        try:
            with open(target + "/cgroup.procs", "w") as f:
                f.write(str(pid))
        except OSError as e:
            raise BusError(f"System.Error.{errno.errorcode.get(e.errno, 'EIO')}",
                           f"Failed to attach processes to control group: {e.strerror}") from None
        log(f"moved {pid} to {target} for uid {sender_uid}")


def main():
    bus = Bus(BUS)
    w = Writer()
    w.string(NAME)
    w.u32(4)  # DBUS_NAME_FLAG_DO_NOT_QUEUE
    if bus.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "RequestName", "su", bytes(w.buf)).u32() != 1:
        raise RuntimeError(f"could not become {NAME} on the system bus")
    print("ready", flush=True)
    while True:
        m = bus.next_message()
        if m["type"] != METHOD_CALL:
            continue
        f = m["fields"]
        wants_reply = not m["flags"] & NO_REPLY_EXPECTED
        try:
            if (f.get(INTERFACE), f.get(MEMBER)) == ("org.freedesktop.DBus.Peer", "Ping"):
                pass
            elif (f.get(INTERFACE) in (MANAGER, None) and f.get(MEMBER) == "AttachProcessesToUnit"
                  and f.get(SIGNATURE) == "ssau"):
                attach_processes_to_unit(bus, m)
            else:
                raise BusError("org.freedesktop.DBus.Error.UnknownMethod",
                               f"{f.get(INTERFACE)}.{f.get(MEMBER)} is not implemented by the tests/vm stub of PID 1")
            if wants_reply:
                bus.reply(m)
        except BusError as e:
            log(f"{f.get(MEMBER)} from {f.get(SENDER)}: {e.name}: {e}")
            if wants_reply:
                bus.error(m, e.name, str(e))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 -- report why, for the job's log
        log(f"exiting: {type(e).__name__}: {e}")
        sys.exit(1)
