//! A private mount namespace per container (Linux, as root), as a container runtime builds
//! one: an overlay of this machine's root filesystem as the container's root, fresh `/dev`
//! and `/tmp`, the host's `/proc` and a read-only `/sys`, the pod's volumes, the image's
//! files and the termination message file bind-mounted at their container paths, then
//! `chroot` and `chdir`.
//!
//! Everything the child needs is prepared before `fork` as a list of [`Step`]s holding
//! `CString`s and open file descriptors; between `fork` and `exec` the child only issues
//! async-signal-safe system calls (`unshare`, `mount`, `mkdir`, `open`, `close`, `symlink`,
//! `chroot`, `chdir`). Sources of bind mounts are opened (`O_PATH`) in the new namespace
//! before `chroot` and mounted through `/proc/self/fd/N` after it, so that their targets
//! are created and resolved inside the container's root (where `/var/run` may be a link to
//! `/run`), never on this machine. A failing step is reported to the parent through the raw OS error of
//! the spawn: [`decode_error`] turns it back into the step and its `errno`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

/// Marks a raw OS error as a failed setup step: `MARK | step << 12 | errno`.
const MARK: i32 = 0x4000_0000;

/// Devices bind-mounted from this machine into the container's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Symbolic links every container's `/dev` has.
const DEV_LINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

/// One system call of the setup.
enum Step {
    /// `unshare(CLONE_NEWNS)`.
    Unshare,
    /// `open(path, O_PATH | O_CLOEXEC)`, the descriptor kept in a slot of the plan.
    Open(CString, usize),
    /// A bind mount of the file opened into a slot, through `/proc/self/fd/N`.
    BindSlot(usize, CString),
    /// `mount(src, target, fstype, flags, data)`.
    Mount {
        src: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// `mkdir(path, 0755)`; an existing entry is fine.
    Mkdir(CString),
    /// `open(path, O_CREAT)` then `close`: an empty file to mount onto.
    Touch(CString),
    /// `symlink(target, link)`.
    Symlink(CString, CString),
    /// `chroot(path)`.
    Chroot(CString),
    /// `chdir(path)`.
    Chdir(CString),
}

/// What a bind mount in the container comes from.
pub(super) struct BindSource {
    /// The file or directory on this machine.
    pub host: PathBuf,
    /// Where it appears in the container (absolute).
    pub container: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The setup of one container's mount namespace, ready to run in the child.
pub(super) struct Plan {
    steps: Vec<Step>,
    /// What each step does, for error messages.
    descriptions: Vec<String>,
    /// How many leading steps build the namespace itself (not this container's mounts): a
    /// failure there means this machine cannot isolate containers.
    base_steps: usize,
    /// Descriptors of bind sources, written by the child (`O_CLOEXEC`: `exec` closes
    /// them).
    slots: Vec<AtomicI32>,
}

fn cstr(p: impl AsRef<[u8]>) -> std::io::Result<CString> {
    CString::new(p.as_ref()).map_err(std::io::Error::other)
}

fn path_cstr(p: &Path) -> std::io::Result<CString> {
    cstr(p.as_os_str().as_bytes())
}

/// `/a/b/c` → `/a`, `/a/b` (the parents, without the path itself).
fn parents(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        cur.push('/');
        cur.push_str(part);
        out.push(cur.clone());
    }
    out
}

impl Plan {
    fn push(&mut self, step: Step, description: String) {
        self.steps.push(step);
        self.descriptions.push(description);
    }

    fn mount(
        &mut self,
        src: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> std::io::Result<()> {
        let description = format!(
            "mounting {:?} ({}) at {:?}",
            src.unwrap_or("none"),
            fstype.unwrap_or("bind"),
            target
        );
        self.push(
            Step::Mount {
                src: src.map(cstr).transpose()?,
                target: path_cstr(target)?,
                fstype: fstype.map(cstr).transpose()?,
                flags,
                data: data.map(cstr).transpose()?,
            },
            description,
        );
        Ok(())
    }

    /// The setup for a container whose scratch directory (an empty directory on this
    /// machine, private to the container) is `scratch`; `workdir` is the container's
    /// working directory.
    pub(super) fn new(
        scratch: &Path,
        binds: &[BindSource],
        workdir: &str,
    ) -> std::io::Result<Self> {
        let mut plan = Plan {
            steps: Vec::new(),
            descriptions: Vec::new(),
            base_steps: 0,
            slots: Vec::new(),
        };
        let root = scratch.join("root");
        let (upper, work) = (scratch.join("upper"), scratch.join("work"));
        plan.push(Step::Unshare, "unsharing the mount namespace".into());
        plan.mount(
            None,
            Path::new("/"),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )?;
        plan.mount(Some("tmpfs"), scratch, Some("tmpfs"), 0, Some("mode=0755"))?;
        for d in [&upper, &work, &root] {
            plan.push(Step::Mkdir(path_cstr(d)?), format!("creating {d:?}"));
        }
        let overlay = format!(
            "lowerdir=/,upperdir={},workdir={}",
            upper.display(),
            work.display()
        );
        plan.mount(Some("overlay"), &root, Some("overlay"), 0, Some(&overlay))?;
        let bind = libc::MS_BIND | libc::MS_REC;
        plan.mount(Some("/proc"), &root.join("proc"), None, bind, None)?;
        plan.mount(Some("/sys"), &root.join("sys"), None, bind, None)?;
        plan.mount(
            None,
            &root.join("sys"),
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
            None,
        )?;
        plan.mount(
            Some("tmpfs"),
            &root.join("tmp"),
            Some("tmpfs"),
            0,
            Some("mode=1777"),
        )?;
        let dev = root.join("dev");
        plan.mount(
            Some("tmpfs"),
            &dev,
            Some("tmpfs"),
            libc::MS_NOSUID,
            Some("mode=0755"),
        )?;
        for d in DEVICES {
            let target = dev.join(d);
            plan.push(
                Step::Touch(path_cstr(&target)?),
                format!("creating {target:?}"),
            );
            plan.mount(
                Some(&format!("/dev/{d}")),
                &target,
                None,
                libc::MS_BIND,
                None,
            )?;
        }
        for (target, link) in DEV_LINKS {
            let link = dev.join(link);
            plan.push(
                Step::Symlink(cstr(target)?, path_cstr(&link)?),
                format!("linking {link:?}"),
            );
        }
        let shm = dev.join("shm");
        plan.push(Step::Mkdir(path_cstr(&shm)?), format!("creating {shm:?}"));
        plan.mount(
            Some("tmpfs"),
            &shm,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=1777"),
        )?;
        let mut binds: Vec<&BindSource> = binds.iter().collect();
        binds.sort_by_key(|b| b.container.matches('/').count());
        let base = plan.steps.len();
        for (slot, b) in binds.iter().enumerate() {
            plan.slots.push(AtomicI32::new(-1));
            plan.push(
                Step::Open(path_cstr(&b.host)?, slot),
                format!("opening {:?}", b.host),
            );
        }
        plan.push(
            Step::Chroot(path_cstr(&root)?),
            format!("chroot to {root:?}"),
        );
        plan.push(Step::Chdir(cstr("/")?), "chdir to /".into());
        plan.base_steps = base;

        // This container's mounts, inside the new root.
        for (slot, b) in binds.into_iter().enumerate() {
            plan.bind(b, slot)?;
        }
        for p in parents(&format!("{workdir}/.")) {
            plan.push(Step::Mkdir(cstr(&p)?), format!("creating {p:?}"));
        }
        plan.push(Step::Chdir(cstr(workdir)?), format!("chdir to {workdir:?}"));
        Ok(plan)
    }

    fn bind(&mut self, b: &BindSource, slot: usize) -> std::io::Result<()> {
        let is_dir = std::fs::metadata(&b.host)?.is_dir();
        for p in parents(&b.container) {
            self.push(Step::Mkdir(cstr(&p)?), format!("creating {p:?}"));
        }
        let target = cstr(&b.container)?;
        self.push(
            if is_dir {
                Step::Mkdir(target)
            } else {
                Step::Touch(target)
            },
            format!("creating {:?}", b.container),
        );
        self.push(
            Step::BindSlot(slot, cstr(&b.container)?),
            format!("mounting {:?} at {:?}", b.host, b.container),
        );
        let target = Path::new(&b.container);
        if b.read_only {
            self.mount(
                None,
                target,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                None,
            )?;
        }
        Ok(())
    }

    /// Runs the steps. Called in the child between `fork` and `exec`: it allocates nothing
    /// and issues only async-signal-safe system calls.
    pub(super) fn run_in_child(&self) -> std::io::Result<()> {
        for (i, step) in self.steps.iter().enumerate() {
            if !run_step(step, &self.slots) {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                return Err(std::io::Error::from_raw_os_error(
                    MARK | ((i as i32) << 12) | (errno & 0xfff),
                ));
            }
        }
        Ok(())
    }

    /// If `e` is a failed step of this plan: whether the step built the namespace itself
    /// (rather than this container's mounts), and what failed.
    pub(super) fn decode_error(&self, e: &std::io::Error) -> Option<(bool, String)> {
        let raw = e.raw_os_error()?;
        if raw & MARK == 0 {
            return None;
        }
        let step = ((raw & !MARK) >> 12) as usize;
        let errno = std::io::Error::from_raw_os_error(raw & 0xfff);
        let what = self.descriptions.get(step)?;
        Some((step < self.base_steps, format!("{what}: {errno}")))
    }
}

/// Writes `/proc/self/fd/<fd>` and a NUL into `buf`, without allocating.
fn fd_path(fd: i32, buf: &mut [u8; 32]) {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd.unsigned_abs(), 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
}

fn run_step(step: &Step, slots: &[AtomicI32]) -> bool {
    let null = std::ptr::null();
    let opt = |c: &Option<CString>| c.as_ref().map_or(null, |c| c.as_ptr());
    // SAFETY: every pointer is null or points at a NUL-terminated string that the plan owns
    // and that outlives the call; the calls are async-signal-safe and touch no memory of
    // this process besides reading those strings.
    unsafe {
        match step {
            Step::Unshare => libc::unshare(libc::CLONE_NEWNS) == 0,
            Step::Open(p, slot) => {
                let fd = libc::open(p.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
                slots[*slot].store(fd, Ordering::Relaxed);
                fd >= 0
            }
            Step::BindSlot(slot, target) => {
                let mut src = [0u8; 32];
                fd_path(slots[*slot].load(Ordering::Relaxed), &mut src);
                libc::mount(
                    src.as_ptr().cast(),
                    target.as_ptr(),
                    null,
                    libc::MS_BIND,
                    null.cast(),
                ) == 0
            }
            Step::Mount {
                src,
                target,
                fstype,
                flags,
                data,
            } => {
                libc::mount(
                    opt(src),
                    target.as_ptr(),
                    opt(fstype),
                    *flags,
                    opt(data).cast(),
                ) == 0
            }
            Step::Mkdir(p) => {
                libc::mkdir(p.as_ptr(), 0o755) == 0
                    || std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST)
            }
            Step::Touch(p) => {
                let fd = libc::open(
                    p.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                );
                fd >= 0 && libc::close(fd) == 0
            }
            Step::Symlink(target, link) => libc::symlink(target.as_ptr(), link.as_ptr()) == 0,
            Step::Chroot(p) => libc::chroot(p.as_ptr()) == 0,
            Step::Chdir(p) => libc::chdir(p.as_ptr()) == 0,
        }
    }
}

/// Whether this process may try mount namespaces: Linux, effective uid 0.
pub(super) fn may_isolate() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::{fd_path, parents};

    #[test]
    fn fd_paths_without_allocation() {
        let mut buf = [0u8; 32];
        fd_path(1234, &mut buf);
        assert_eq!(&buf[..19], b"/proc/self/fd/1234\0");
        fd_path(0, &mut buf);
        assert_eq!(&buf[..16], b"/proc/self/fd/0\0");
    }

    #[test]
    fn parents_of_a_path() {
        assert_eq!(parents("/a/b/c"), vec!["/a", "/a/b"]);
        assert_eq!(parents("/a"), Vec::<String>::new());
        assert_eq!(parents("/w/."), vec!["/w"]);
    }
}
