"""Builds a function's view of the machine, then becomes the function's runtime — run by `unshare` (Linux) in new
user, mount and PID namespaces, before any of the function's code.

Standard library only: it runs with the embedded AWS's Python, inside the namespaces, as their root.

1. A new root on an empty tmpfs. Into it, read-only, only what a function needs: the system's programs and
   libraries (`/usr`, and `/bin`, `/lib`… as the links they are), a few files of `/etc`, the Python prefixes, the
   runtime client, the linked libraries and the deployed code — each bound at its own path. Writable: a private
   `/tmp` (Lambda's ephemeral storage) and `/dev/shm`; `/dev` holds null, zero, full, random and urandom; `/proc`
   is this PID namespace's own. Nothing else of the caller's machine exists there: not the home, not orderflow's
   state folder, not the project tree.
2. `pivot_root` into it and the old root detached: no path leads back.
3. Every capability dropped — the bounding set, the ambient set, the effective/permitted/inheritable sets — root's
   exec privileges switched off for good (securebits, locked), and `no_new_privs` set. The function cannot unmount,
   remount or mount over its view; mounts it might make in a namespace of its own cannot reveal what lies under the
   locked ones.
4. `exec` the runtime. As PID 1 of its namespace, its end is the end of every process it started (a detached child
   included), and no process outside the namespace — the daemon first — can be seen, signalled or traced.

Usage: python fence.py SPEC_JSON -- ARGV…   (SPEC: {"readonly": [...], "tmp_mb": N, "cwd": "..."})
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import platform
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 28, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS_LOCKED… each with its lock bit.
SECUREBITS_LOCKED_NOROOT = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80
_SYSCALLS = {"x86_64": {"pivot_root": 155, "capset": 126}, "aarch64": {"pivot_root": 41, "capset": 91}}
DEVICES = ("null", "zero", "full", "random", "urandom")
ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "hosts", "nsswitch.conf", "resolv.conf",
    "ssl", "ca-certificates", "ca-certificates.conf", "mime.types", "alternatives",
)  # fmt: skip
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                    data.encode() if data else None),
        f"mount {source} on {target}",
    )  # fmt: skip


def _bind(source: str, target: str, writable: bool = False) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            with open(target, "w"):  # a mount point, nothing more
                pass
    _mount(source, target, None, MS_BIND | MS_REC)
    if not writable:
        # A bind mount takes no flags of its own: read-only is a remount of it (and of nothing else).
        _mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _place(path: str, root: str, readonly: bool = True) -> None:
    """`path` at the same place in the new root: a link as the same link, a folder or file bound."""
    inside = root + path
    if os.path.islink(path):
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        if not os.path.lexists(inside):
            os.symlink(os.readlink(path), inside)
        return
    if os.path.exists(path) and (not os.path.lexists(inside) or os.path.isdir(inside)):
        _bind(path, inside, writable=not readonly)


def build(root: str, readonly: list[str], tmp_mb: int) -> None:
    _mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing done here propagates back to the caller's machine
    _mount("orderflow-fence", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    for path in SYSTEM:
        _place(path, root)
    for name in ETC:
        _place(f"/etc/{name}", root)
    os.makedirs(root + "/tmp")
    _mount("orderflow-tmp", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={tmp_mb}m")
    # Parents before children: a folder under another already bound is bound over its place there.
    for path in sorted({os.path.realpath(p) for p in readonly if os.path.exists(p)}, key=len):
        if not os.path.lexists(root + path) or os.path.isdir(root + path):
            _bind(path, root + path)
    os.makedirs(root + "/dev/shm")
    for device in DEVICES:
        _bind(f"/dev/{device}", f"{root}/dev/{device}", writable=True)
    _mount("orderflow-shm", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + "/.old")
    syscall = _SYSCALLS[platform.machine()]
    _check(_libc.syscall(syscall["pivot_root"], root.encode(), (root + "/.old").encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "detach the old root")
    os.rmdir("/.old")
    _mount("none", "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32))


def drop_privileges() -> None:
    _check(_libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_NOROOT, 0, 0, 0), "securebits")
    try:
        with open("/proc/sys/kernel/cap_last_cap") as known:
            last = int(known.read())
    except (OSError, ValueError):
        last = 63  # every bit a capability set can hold: dropping one the kernel does not know is refused below
    for capability in range(last + 1):
        if _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: unknown
            _check(-1, f"drop capability {capability}")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3: two words, all 0
    _check(_libc.syscall(_SYSCALLS[platform.machine()]["capset"], ctypes.byref(header), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def main(argv: list[str]) -> None:
    spec, separator, command = json.loads(argv[0]), argv[1], argv[2:]
    if separator != "--" or not command:
        raise SystemExit("usage: fence.py SPEC_JSON -- ARGV…")
    root = "/run" if os.path.isdir("/run") else "/mnt"  # any folder will do: the tmpfs hides it, in here only
    try:
        build(root, spec["readonly"], int(spec.get("tmp_mb", 512)))
        drop_privileges()
        os.chdir(spec.get("cwd") or "/tmp")
    except OSError as e:
        print(f"orderflow fence: {e}", file=sys.stderr, flush=True)
        os._exit(97)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
