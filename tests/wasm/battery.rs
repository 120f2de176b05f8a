//! The escape battery's directory attempts, made from inside a guest: each
//! attempt is a short sequence of raw WASI calls, written into a module in
//! the text format, and the guest reports each attempt's `errno` with a
//! call on a request channel, so the host checks the canaries after every
//! attempt, while the guest waits, and judges it on its own.

use compartment::testkit::{Attempt, Expected, Outcome};

/// The guest's handle numbers: the grant's directories are its preopens, in
/// field order, after the three standard streams.
pub(crate) const DATA: i32 = 3;
pub(crate) const DOCS: i32 = 4;

// WASI's flags and rights, as the guest passes them.
const SYMLINK_FOLLOW: i32 = 1;
const O_CREAT: i32 = 1;
const O_DIRECTORY: i32 = 2;
const O_TRUNC: i32 = 8;
const RIGHT_FD_READ: i64 = 1 << 1;
const RIGHT_FD_WRITE: i64 = 1 << 6;
const FD_APPEND: i32 = 1;
const MTIM_NOW: i32 = 8;

/// WASI's word for a refusal of the capability.
const ENOTCAPABLE: i32 = 76;

/// The imports the battery calls, with their parameter types.
const IMPORTS: &[(&str, &str, &str)] = &[
    (
        "wasi_snapshot_preview1",
        "path_open",
        "i32 i32 i32 i32 i32 i64 i64 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_create_directory",
        "i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_remove_directory",
        "i32 i32 i32",
    ),
    ("wasi_snapshot_preview1", "path_unlink_file", "i32 i32 i32"),
    (
        "wasi_snapshot_preview1",
        "path_rename",
        "i32 i32 i32 i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_link",
        "i32 i32 i32 i32 i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_symlink",
        "i32 i32 i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_readlink",
        "i32 i32 i32 i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_filestat_get",
        "i32 i32 i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_filestat_set_times",
        "i32 i32 i32 i32 i64 i64 i32",
    ),
    ("wasi_snapshot_preview1", "fd_read", "i32 i32 i32 i32"),
    ("wasi_snapshot_preview1", "fd_write", "i32 i32 i32 i32"),
    (
        "wasi_snapshot_preview1",
        "fd_readdir",
        "i32 i32 i32 i64 i32",
    ),
    ("wasi_snapshot_preview1", "fd_filestat_set_size", "i32 i64"),
    (
        "wasi_snapshot_preview1",
        "fd_filestat_set_times",
        "i32 i64 i64 i32",
    ),
    ("wasi_snapshot_preview1", "fd_allocate", "i32 i64 i64"),
    (
        "wasi_snapshot_preview1",
        "fd_fdstat_set_rights",
        "i32 i64 i64",
    ),
    ("wasi_snapshot_preview1", "fd_renumber", "i32 i32"),
    ("wasi_snapshot_preview1", "fd_close", "i32"),
    ("compartment", "lookup", "i32 i32 i32"),
    ("compartment", "call", "i32 i32 i32 i32 i32 i32"),
];

// The guest's memory: the handles its opens return, a scratch area for
// what calls write back, a buffer, the report, then the strings.
const OPENED: u32 = 256;
const SLOTS: usize = 16;
const SCRATCH: u32 = 512;
const BUFFER: u32 = 1024;
const BUFFER_LEN: u32 = 1024;
const REPORT: u32 = 2048;
const REPORT_HANDLE: u32 = 2064;
const STRINGS: u32 = 4096;

/// One argument of a call.
#[derive(Clone)]
pub(crate) enum Arg {
    I32(i32),
    I64(i64),
    /// A string's pointer and length.
    Str(Vec<u8>),
    /// A pointer and a length as given, for calls that pass bad ones on
    /// purpose.
    Span(i32, i32),
    /// An iovec list of one buffer holding these bytes: its pointer and
    /// count.
    Iov(Vec<u8>),
    /// An iovec list of one buffer to read into.
    ReadIov,
    /// Where the call writes a handle, for step `n` to use.
    OpenedOut(usize),
    /// The handle that step `n` opened.
    Opened(usize),
    /// A pointer to scratch memory for what the call writes back.
    Scratch,
    /// The buffer's pointer and length.
    Buffer,
}

/// One WASI call.
#[derive(Clone)]
pub(crate) struct Call {
    import: &'static str,
    args: Vec<Arg>,
}

fn call(import: &'static str, args: Vec<Arg>) -> Call {
    assert!(
        IMPORTS.iter().any(|(_, name, _)| *name == import),
        "the battery does not import {import}"
    );
    Call { import, args }
}

fn s(path: &str) -> Arg {
    Arg::Str(path.as_bytes().to_vec())
}

/// Opens `path` beneath `dir` as step `slot`.
pub(crate) fn open(
    slot: usize,
    dir: Arg,
    follow: bool,
    path: Arg,
    oflags: i32,
    rights: i64,
    fdflags: i32,
) -> Call {
    call(
        "path_open",
        vec![
            dir,
            Arg::I32(if follow { SYMLINK_FOLLOW } else { 0 }),
            path,
            Arg::I32(oflags),
            Arg::I64(rights),
            Arg::I64(rights),
            Arg::I32(fdflags),
            Arg::OpenedOut(slot),
        ],
    )
}

fn read_from(slot: usize) -> Call {
    call(
        "fd_read",
        vec![Arg::Opened(slot), Arg::ReadIov, Arg::Scratch],
    )
}

fn write_to(slot: usize) -> Call {
    call(
        "fd_write",
        vec![Arg::Opened(slot), Arg::Iov(b"x".to_vec()), Arg::Scratch],
    )
}

/// One attempt: its calls, made in order while each succeeds; its `errno`
/// is the first failure's, or 0.
pub(crate) struct Try {
    pub(crate) name: String,
    pub(crate) against: &'static str,
    pub(crate) expected: Expected,
    pub(crate) calls: Vec<Call>,
}

/// What the directory attempts should come to; `Succeeds` marks the
/// controls, which prove the battery reaches its directories at all.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Should {
    /// Refused by the capability (`ENOTCAPABLE`).
    BeDenied,
    /// Failing in any way.
    Fail,
    /// Succeeding, and staying inside.
    Succeed,
}

/// The battery.
#[derive(Default)]
pub(crate) struct Battery {
    tries: Vec<(Try, Should)>,
}

impl Battery {
    fn add(
        &mut self,
        against: &'static str,
        name: impl Into<String>,
        should: Should,
        calls: Vec<Call>,
    ) {
        let expected = match should {
            Should::BeDenied => Expected::Denied,
            Should::Fail => Expected::Fails,
            Should::Succeed => Expected::StaysInside,
        };
        self.tries.push((
            Try {
                name: name.into(),
                against,
                expected,
                calls,
            },
            should,
        ));
    }

    /// The directory attempts against the full directory `data` and the
    /// read-only `docs`, each a standard sandbox (`links/abs-canary`,
    /// `hardlink` and the rest); `canaries` are each sandbox's canary, by
    /// absolute path, in the same order.
    pub(crate) fn directories(canaries: [&str; 2]) -> Battery {
        let mut battery = Battery::default();
        for ((fd, against), canary) in [(DATA, "data (full)"), (DOCS, "docs (read-only)")]
            .into_iter()
            .zip(canaries)
        {
            battery.reads(fd, against, canary);
        }
        battery.writes(DATA, "data (full)", canaries[0]);
        battery.read_only(DOCS, "docs (read-only)");
        battery.descriptors();
        battery
    }

    fn reads(&mut self, fd: i32, against: &'static str, canary: &str) {
        use Should::*;
        let dir = || Arg::I32(fd);
        let read = |path: Arg, follow: bool| {
            vec![
                open(0, dir(), follow, path, 0, RIGHT_FD_READ, 0),
                read_from(0),
            ]
        };
        let list = |path: &str, follow: bool| {
            vec![
                open(0, dir(), follow, s(path), O_DIRECTORY, RIGHT_FD_READ, 0),
                call(
                    "fd_readdir",
                    vec![Arg::Opened(0), Arg::Buffer, Arg::I64(0), Arg::Scratch],
                ),
            ]
        };
        let stat = |path: &str, follow: bool| {
            call(
                "path_filestat_get",
                vec![
                    dir(),
                    Arg::I32(if follow { SYMLINK_FOLLOW } else { 0 }),
                    s(path),
                    Arg::Scratch,
                ],
            )
        };
        self.add(
            against,
            "control: read `notes.txt`",
            Succeed,
            read(s("notes.txt"), true),
        );
        self.add(
            against,
            "control: read `docs/latest`, a symlink inside",
            Succeed,
            read(s("docs/latest"), true),
        );
        self.add(
            against,
            "control: list `docs/deep`",
            Succeed,
            list("docs/deep", true),
        );
        self.add(against, "open `..`", BeDenied, list("..", true));
        self.add(
            against,
            "open `..` without following symlinks",
            BeDenied,
            list("..", false),
        );
        self.add(
            against,
            "read `../canary`",
            BeDenied,
            read(s("../canary"), true),
        );
        self.add(
            against,
            "read `../../../../../../../../etc/passwd`",
            BeDenied,
            read(s("../../../../../../../../etc/passwd"), true),
        );
        self.add(
            against,
            "read `/etc/passwd`",
            BeDenied,
            read(s("/etc/passwd"), true),
        );
        self.add(
            against,
            "read the canary by its absolute path",
            BeDenied,
            read(s(canary), true),
        );
        self.add(
            against,
            "read `/proc/self/root/etc/passwd`",
            BeDenied,
            read(s("/proc/self/root/etc/passwd"), true),
        );
        self.add(
            against,
            "list `/proc/self/cwd`",
            BeDenied,
            list("/proc/self/cwd", true),
        );
        self.add(against, "list `/`", BeDenied, list("/", true));
        self.add(
            against,
            "read `docs/deep/er/../../../../canary` (climb in the middle)",
            BeDenied,
            read(s("docs/deep/er/../../../../canary"), true),
        );
        self.add(
            against,
            "open `docs/deep/er/../../../..` (climb at the end)",
            BeDenied,
            list("docs/deep/er/../../../..", true),
        );
        self.add(
            against,
            "read through an absolute symlink to the canary",
            BeDenied,
            read(s("links/abs-canary"), true),
        );
        self.add(
            against,
            "read through a relative symlink to the canary",
            BeDenied,
            read(s("links/rel-canary"), true),
        );
        self.add(
            against,
            "read through a symlink chain ending outside",
            BeDenied,
            read(s("links/chain-1"), true),
        );
        self.add(
            against,
            "read through a symlinked outside directory",
            BeDenied,
            read(s("links/outside-dir/canary"), true),
        );
        self.add(
            against,
            "read a symlink loop",
            Fail,
            read(s("links/loop-a"), true),
        );
        self.add(
            against,
            "read the fifo `pipe`, which has no writer (never waits)",
            Succeed,
            read(s("pipe"), true),
        );
        self.add(
            against,
            "list a symlinked outside directory",
            BeDenied,
            list("links/outside-dir", true),
        );
        self.add(
            against,
            "open a symlinked outside directory without following symlinks",
            Fail,
            list("links/outside-dir", false),
        );
        self.add(
            against,
            "read an absolute symlink to the canary without following it",
            Fail,
            read(s("links/abs-canary"), false),
        );
        self.add(
            against,
            "metadata of `../canary`",
            BeDenied,
            vec![stat("../canary", true)],
        );
        self.add(
            against,
            "metadata through an absolute symlink to the canary",
            BeDenied,
            vec![stat("links/abs-canary", true)],
        );
        self.add(
            against,
            "metadata of the canary by its absolute path",
            BeDenied,
            vec![stat(canary, false)],
        );
        self.add(
            against,
            "read the target of an absolute symlink to the canary (its text only)",
            Succeed,
            vec![call(
                "path_readlink",
                vec![dir(), s("links/abs-canary"), Arg::Buffer, Arg::Scratch],
            )],
        );
        self.add(
            against,
            "read a path with a NUL byte",
            Fail,
            read(Arg::Str(b"notes.txt\0/../../canary".to_vec()), true),
        );
        self.add(against, "read an empty path", Fail, read(s(""), true));
        self.add(
            against,
            "read a 6000-byte path",
            Fail,
            read(s(&"a/".repeat(3000)), true),
        );
        self.add(
            against,
            "read a path that is not UTF-8",
            Fail,
            read(Arg::Str(b"../\xff\xfe".to_vec()), true),
        );
        self.add(
            against,
            "read a path whose length runs past the memory's end",
            Fail,
            vec![open(
                0,
                dir(),
                true,
                Arg::Span(STRINGS as i32, i32::MAX),
                0,
                RIGHT_FD_READ,
                0,
            )],
        );
        self.add(
            against,
            "climb from a subdirectory opened beneath: `..` of `docs`",
            BeDenied,
            vec![
                open(0, dir(), true, s("docs"), O_DIRECTORY, RIGHT_FD_READ, 0),
                open(
                    1,
                    Arg::Opened(0),
                    true,
                    s("../../canary"),
                    0,
                    RIGHT_FD_READ,
                    0,
                ),
            ],
        );
        self.add(
            against,
            "read an absolute path beneath a subdirectory opened beneath",
            BeDenied,
            vec![
                open(0, dir(), true, s("docs"), O_DIRECTORY, RIGHT_FD_READ, 0),
                open(1, Arg::Opened(0), true, s(canary), 0, RIGHT_FD_READ, 0),
            ],
        );
    }

    fn writes(&mut self, fd: i32, against: &'static str, canary: &str) {
        use Should::*;
        let dir = || Arg::I32(fd);
        let create = |path: &str| {
            vec![
                open(0, dir(), true, s(path), O_CREAT, RIGHT_FD_WRITE, 0),
                write_to(0),
            ]
        };
        let overwrite = |path: &str, follow: bool, oflags: i32| {
            vec![
                open(
                    0,
                    dir(),
                    follow,
                    s(path),
                    oflags,
                    RIGHT_FD_WRITE | RIGHT_FD_READ,
                    0,
                ),
                write_to(0),
            ]
        };
        let touch = |path: &str, follow: bool| {
            vec![call(
                "path_filestat_set_times",
                vec![
                    dir(),
                    Arg::I32(if follow { SYMLINK_FOLLOW } else { 0 }),
                    s(path),
                    Arg::I64(0),
                    Arg::I64(0),
                    Arg::I32(MTIM_NOW),
                ],
            )]
        };
        let path_call = |import: &'static str, path: &str| vec![call(import, vec![dir(), s(path)])];
        let rename =
            |from: &str, to: &str| vec![call("path_rename", vec![dir(), s(from), dir(), s(to)])];
        let link = |from: &str, to: &str| {
            vec![call(
                "path_link",
                vec![dir(), Arg::I32(0), s(from), dir(), s(to)],
            )]
        };
        let symlink =
            |target: &str, at: &str| vec![call("path_symlink", vec![s(target), dir(), s(at)])];
        self.add(
            against,
            "control: create and write `made.txt`",
            Succeed,
            create("made.txt"),
        );
        self.add(
            against,
            "control: make the directory `made`",
            Succeed,
            path_call("path_create_directory", "made"),
        );
        self.add(
            against,
            "control: a symlink inside, `inside -> notes.txt`",
            Succeed,
            symlink("notes.txt", "inside"),
        );
        self.add(
            against,
            "create `../escaped`",
            BeDenied,
            create("../escaped"),
        );
        self.add(
            against,
            "create `/tmp/escaped`",
            BeDenied,
            create("/tmp/escaped"),
        );
        self.add(
            against,
            "make the directory `../escaped-dir`",
            BeDenied,
            path_call("path_create_directory", "../escaped-dir"),
        );
        self.add(
            against,
            "make the directory `docs/deep/../../../escaped-dir`",
            BeDenied,
            path_call("path_create_directory", "docs/deep/../../../escaped-dir"),
        );
        self.add(
            against,
            "remove the directory `..`",
            BeDenied,
            path_call("path_remove_directory", ".."),
        );
        self.add(
            against,
            "remove `..` as a file or symlink",
            BeDenied,
            path_call("path_unlink_file", ".."),
        );
        self.add(
            against,
            "remove `../canary`",
            BeDenied,
            path_call("path_unlink_file", "../canary"),
        );
        self.add(
            against,
            "write the canary by its absolute path",
            BeDenied,
            overwrite(canary, true, 0),
        );
        self.add(
            against,
            "truncate the canary by its absolute path",
            BeDenied,
            overwrite(canary, true, O_TRUNC),
        );
        self.add(
            against,
            "write `../canary`",
            BeDenied,
            overwrite("../canary", true, 0),
        );
        self.add(
            against,
            "write through an absolute symlink to the canary",
            BeDenied,
            overwrite("links/abs-canary", true, 0),
        );
        self.add(
            against,
            "truncate through a relative symlink to the canary",
            BeDenied,
            overwrite("links/rel-canary", true, O_TRUNC),
        );
        self.add(
            against,
            "write through a symlink chain ending outside",
            BeDenied,
            overwrite("links/chain-1", true, 0),
        );
        self.add(
            against,
            "create through a dangling symlink pointing outside",
            BeDenied,
            create("links/dangling"),
        );
        self.add(
            against,
            "create beneath a symlinked outside directory",
            BeDenied,
            create("links/outside-dir/escaped"),
        );
        self.add(
            against,
            "append through an absolute symlink to the canary",
            BeDenied,
            vec![
                open(
                    0,
                    dir(),
                    true,
                    s("links/abs-canary"),
                    0,
                    RIGHT_FD_WRITE,
                    FD_APPEND,
                ),
                write_to(0),
            ],
        );
        self.add(
            against,
            "create an absolute symlink",
            BeDenied,
            symlink("/etc/passwd", "abs-link"),
        );
        self.add(
            against,
            "create a relative symlink that climbs",
            BeDenied,
            symlink("../canary", "climbing-link"),
        );
        self.add(
            against,
            "create a symlink that climbs from a subdirectory",
            BeDenied,
            symlink("../../canary", "docs/climbing-link"),
        );
        self.add(
            against,
            "set the canary's times by its absolute path",
            BeDenied,
            touch(canary, true),
        );
        self.add(
            against,
            "set the times of `../canary`",
            BeDenied,
            touch("../canary", true),
        );
        self.add(
            against,
            "set the times of `../canary` without following symlinks",
            BeDenied,
            touch("../canary", false),
        );
        self.add(
            against,
            "set times through an absolute symlink to the canary",
            BeDenied,
            touch("links/abs-canary", true),
        );
        self.add(
            against,
            "set times through a symlinked outside directory",
            BeDenied,
            touch("links/outside-dir/canary", true),
        );
        self.add(
            against,
            "remove the canary through a symlinked directory",
            BeDenied,
            path_call("path_unlink_file", "links/outside-dir/canary"),
        );
        self.add(
            against,
            "rename the canary through a symlinked directory",
            BeDenied,
            rename("links/outside-dir/canary", "stolen"),
        );
        self.add(
            against,
            "rename a file to `../escaped`",
            BeDenied,
            rename("notes.txt", "../escaped"),
        );
        self.add(
            against,
            "rename a file into a symlinked outside directory",
            BeDenied,
            rename("notes.txt", "links/outside-dir/escaped"),
        );
        self.add(
            against,
            "hard-link a file to `../escaped`",
            BeDenied,
            link("notes.txt", "../escaped"),
        );
        self.add(
            against,
            "hard-link the canary in through `..`",
            BeDenied,
            link("../canary", "linked-canary"),
        );
        self.add(
            against,
            "hard-link the canary in through a symlinked directory",
            BeDenied,
            link("links/outside-dir/canary", "linked-canary"),
        );
        for (planted, what) in [
            ("links/abs-canary", "an absolute symlink to the canary"),
            ("links/rel-canary", "a relative symlink to the canary"),
            ("links/dangling", "a dangling symlink pointing outside"),
            ("links/outside-dir", "a symlink to an outside directory"),
        ] {
            self.add(
                against,
                format!("hard-link {what} to a new name"),
                BeDenied,
                link(planted, "linked"),
            );
        }
        self.add(
            against,
            "write through a hard link to the canary planted beforehand",
            BeDenied,
            overwrite("hardlink", true, 0),
        );
        self.add(
            against,
            "truncate a hard link to the canary planted beforehand",
            BeDenied,
            overwrite("hardlink", true, O_TRUNC),
        );
        self.add(
            against,
            "set the times of a hard link to the canary planted beforehand",
            BeDenied,
            touch("hardlink", true),
        );
        self.add(
            against,
            "shrink a planted hard link to the canary through a handle opened to read",
            Fail,
            vec![
                open(0, dir(), true, s("hardlink"), 0, RIGHT_FD_READ, 0),
                call("fd_filestat_set_size", vec![Arg::Opened(0), Arg::I64(0)]),
            ],
        );
        self.add(
            against,
            "set times through a handle opened to read on a planted hard link",
            Fail,
            vec![
                open(0, dir(), true, s("hardlink"), 0, RIGHT_FD_READ, 0),
                call(
                    "fd_filestat_set_times",
                    vec![Arg::Opened(0), Arg::I64(0), Arg::I64(0), Arg::I32(MTIM_NOW)],
                ),
            ],
        );
        self.add(
            against,
            "write through a file opened to read",
            Fail,
            vec![
                open(0, dir(), true, s("notes.txt"), 0, RIGHT_FD_READ, 0),
                write_to(0),
            ],
        );
        self.add(
            against,
            "write a directory opened beneath after climbing out of it",
            BeDenied,
            vec![
                open(
                    0,
                    dir(),
                    true,
                    s("docs/deep"),
                    O_DIRECTORY,
                    RIGHT_FD_READ,
                    0,
                ),
                open(
                    1,
                    Arg::Opened(0),
                    true,
                    s("../../../escaped"),
                    O_CREAT,
                    RIGHT_FD_WRITE,
                    0,
                ),
                write_to(1),
            ],
        );
    }

    fn read_only(&mut self, fd: i32, against: &'static str) {
        use Should::*;
        let dir = || Arg::I32(fd);
        let path_call = |import: &'static str, path: &str| vec![call(import, vec![dir(), s(path)])];
        self.add(
            against,
            "write `notes.txt`",
            BeDenied,
            vec![
                open(0, dir(), true, s("notes.txt"), 0, RIGHT_FD_WRITE, 0),
                write_to(0),
            ],
        );
        self.add(
            against,
            "append to `notes.txt`",
            BeDenied,
            vec![
                open(0, dir(), true, s("notes.txt"), 0, 0, FD_APPEND),
                write_to(0),
            ],
        );
        self.add(
            against,
            "truncate `notes.txt`",
            BeDenied,
            vec![open(
                0,
                dir(),
                true,
                s("notes.txt"),
                O_TRUNC,
                RIGHT_FD_READ,
                0,
            )],
        );
        self.add(
            against,
            "create `new.txt`",
            BeDenied,
            vec![open(
                0,
                dir(),
                true,
                s("new.txt"),
                O_CREAT,
                RIGHT_FD_READ,
                0,
            )],
        );
        self.add(
            against,
            "make a directory",
            BeDenied,
            path_call("path_create_directory", "new-dir"),
        );
        self.add(
            against,
            "remove a file",
            BeDenied,
            path_call("path_unlink_file", "notes.txt"),
        );
        self.add(
            against,
            "remove a directory",
            BeDenied,
            path_call("path_remove_directory", "docs/deep/er"),
        );
        self.add(
            against,
            "make a symlink",
            BeDenied,
            vec![call("path_symlink", vec![s("notes.txt"), dir(), s("link")])],
        );
        self.add(
            against,
            "rename a file",
            BeDenied,
            vec![call(
                "path_rename",
                vec![dir(), s("notes.txt"), dir(), s("renamed.txt")],
            )],
        );
        self.add(
            against,
            "rename a file into the full directory",
            BeDenied,
            vec![call(
                "path_rename",
                vec![dir(), s("notes.txt"), Arg::I32(DATA), s("moved.txt")],
            )],
        );
        self.add(
            against,
            "hard-link a file",
            BeDenied,
            vec![call(
                "path_link",
                vec![dir(), Arg::I32(0), s("notes.txt"), dir(), s("linked.txt")],
            )],
        );
        self.add(
            against,
            "hard-link a file into the full directory",
            BeDenied,
            vec![call(
                "path_link",
                vec![
                    dir(),
                    Arg::I32(0),
                    s("notes.txt"),
                    Arg::I32(DATA),
                    s("linked.txt"),
                ],
            )],
        );
        self.add(
            against,
            "set a file's times",
            BeDenied,
            vec![call(
                "path_filestat_set_times",
                vec![
                    dir(),
                    Arg::I32(SYMLINK_FOLLOW),
                    s("notes.txt"),
                    Arg::I64(0),
                    Arg::I64(0),
                    Arg::I32(MTIM_NOW),
                ],
            )],
        );
        let opened = |then: Call| {
            vec![
                open(0, dir(), true, s("notes.txt"), 0, RIGHT_FD_READ, 0),
                then,
            ]
        };
        self.add(
            against,
            "write through a file opened beneath",
            Fail,
            opened(write_to(0)),
        );
        self.add(
            against,
            "truncate a file opened beneath",
            Fail,
            opened(call(
                "fd_filestat_set_size",
                vec![Arg::Opened(0), Arg::I64(0)],
            )),
        );
        self.add(
            against,
            "set the times of a file opened beneath",
            Fail,
            opened(call(
                "fd_filestat_set_times",
                vec![Arg::Opened(0), Arg::I64(0), Arg::I64(0), Arg::I32(MTIM_NOW)],
            )),
        );
        self.add(
            against,
            "grow a file opened beneath",
            Fail,
            opened(call(
                "fd_allocate",
                vec![Arg::Opened(0), Arg::I64(0), Arg::I64(4096)],
            )),
        );
        self.add(
            against,
            "add the write right to a file opened beneath, then write",
            Fail,
            vec![
                open(0, dir(), true, s("notes.txt"), 0, RIGHT_FD_READ, 0),
                call(
                    "fd_fdstat_set_rights",
                    vec![Arg::Opened(0), Arg::I64(-1), Arg::I64(-1)],
                ),
                write_to(0),
            ],
        );
        self.add(
            against,
            "create in a subdirectory opened beneath",
            BeDenied,
            vec![
                open(0, dir(), true, s("docs"), O_DIRECTORY, RIGHT_FD_READ, 0),
                open(
                    1,
                    Arg::Opened(0),
                    true,
                    s("new.txt"),
                    O_CREAT,
                    RIGHT_FD_WRITE,
                    0,
                ),
            ],
        );
        self.add(
            against,
            "make a directory in a subdirectory opened beneath",
            BeDenied,
            vec![
                open(0, dir(), true, s("docs"), O_DIRECTORY, RIGHT_FD_READ, 0),
                call("path_create_directory", vec![Arg::Opened(0), s("new-dir")]),
            ],
        );
        self.add(
            against,
            "add the write rights to the directory, then create",
            BeDenied,
            vec![
                call(
                    "fd_fdstat_set_rights",
                    vec![dir(), Arg::I64(-1), Arg::I64(-1)],
                ),
                open(0, dir(), true, s("new.txt"), O_CREAT, RIGHT_FD_WRITE, 0),
            ],
        );
    }

    /// Handles that are not what the call needs, or not handles at all.
    fn descriptors(&mut self) {
        use Should::*;
        let against = "handles";
        self.add(
            against,
            "open beneath a handle never given",
            Fail,
            vec![open(
                0,
                Arg::I32(99),
                true,
                s("etc/passwd"),
                0,
                RIGHT_FD_READ,
                0,
            )],
        );
        self.add(
            against,
            "open beneath a negative handle",
            Fail,
            vec![open(
                0,
                Arg::I32(-1),
                true,
                s("etc/passwd"),
                0,
                RIGHT_FD_READ,
                0,
            )],
        );
        self.add(
            against,
            "open beneath standard output",
            Fail,
            vec![open(
                0,
                Arg::I32(1),
                true,
                s("etc/passwd"),
                0,
                RIGHT_FD_READ,
                0,
            )],
        );
        self.add(
            against,
            "read a directory as a file",
            Fail,
            vec![read_from_fd(DATA)],
        );
        self.add(
            against,
            "write a directory as a file",
            Fail,
            vec![call(
                "fd_write",
                vec![Arg::I32(DATA), Arg::Iov(b"x".to_vec()), Arg::Scratch],
            )],
        );
        // Last: it moves the read-only directory over the full one.
        self.add(
            against,
            "renumber the read-only directory over the full one, then create through it",
            BeDenied,
            vec![
                call("fd_renumber", vec![Arg::I32(DOCS), Arg::I32(DATA)]),
                open(
                    0,
                    Arg::I32(DATA),
                    true,
                    s("new.txt"),
                    O_CREAT,
                    RIGHT_FD_WRITE,
                    0,
                ),
            ],
        );
    }

    /// The attempts, in order.
    pub(crate) fn tries(&self) -> impl Iterator<Item = &(Try, Should)> {
        self.tries.iter()
    }

    /// The guest that makes every attempt and reports each `errno` on
    /// its request channel `report` as `[index, errno]` (two
    /// little-endian `u32`s), waiting for the host's answer before the
    /// next.
    pub(crate) fn guest(&self) -> String {
        let mut strings = Strings::default();
        let mut body = String::new();
        let report = strings.add(b"report");
        body.push_str(&format!(
            "(drop (call $lookup (i32.const {}) (i32.const {}) (i32.const {REPORT_HANDLE})))\n",
            report.0, report.1
        ));
        for (index, (attempt, _)) in self.tries.iter().enumerate() {
            body.push_str(&format!(";; {}\n", attempt.name.replace(['\n', ';'], " ")));
            for slot in 0..SLOTS {
                body.push_str(&format!(
                    "(i32.store (i32.const {}) (i32.const -1))\n",
                    OPENED + 4 * slot as u32
                ));
            }
            for (step, made) in attempt.calls.iter().enumerate() {
                let invocation = invocation(made, &mut strings);
                if step == 0 {
                    body.push_str(&format!("(local.set $e {invocation})\n"));
                } else {
                    body.push_str(&format!(
                        "(if (i32.eqz (local.get $e)) (then (local.set $e {invocation})))\n"
                    ));
                }
            }
            body.push_str(&format!(
                "(i32.store (i32.const {REPORT}) (i32.const {index}))\n\
                 (i32.store (i32.const {}) (local.get $e))\n\
                 (drop (call $call (i32.load (i32.const {REPORT_HANDLE})) (i32.const {REPORT}) (i32.const 8) (i32.const {SCRATCH}) (i32.const 64) (i32.const {})))\n",
                REPORT + 4,
                REPORT + 8
            ));
            for slot in 0..SLOTS {
                let at = OPENED + 4 * slot as u32;
                body.push_str(&format!(
                    "(if (i32.ge_s (i32.load (i32.const {at})) (i32.const 0)) (then (drop (call $fd_close (i32.load (i32.const {at}))))))\n"
                ));
            }
        }
        let imports: String = IMPORTS
            .iter()
            .map(|(module, name, params)| {
                let params: String = params.split(' ').map(|ty| format!(" {ty}")).collect();
                format!(
                    "(import \"{module}\" \"{name}\" (func ${name} (param{params}) (result i32)))\n"
                )
            })
            .collect();
        let pages = (strings.next as usize).div_ceil(65536);
        format!(
            "(module\n{imports}(memory (export \"memory\") {pages})\n{}(func (export \"_start\") (local $e i32)\n{body}))",
            strings.data
        )
    }
}

fn read_from_fd(fd: i32) -> Call {
    call("fd_read", vec![Arg::I32(fd), Arg::ReadIov, Arg::Scratch])
}

/// The strings and iovecs the guest passes, as data segments.
struct Strings {
    data: String,
    next: u32,
}

impl Default for Strings {
    fn default() -> Self {
        Strings {
            data: String::new(),
            next: STRINGS,
        }
    }
}

impl Strings {
    /// Places `bytes` in memory: their pointer and length.
    fn add(&mut self, bytes: &[u8]) -> (u32, u32) {
        let at = self.next;
        if !bytes.is_empty() {
            let escaped: String = bytes.iter().map(|byte| format!("\\{byte:02x}")).collect();
            self.data
                .push_str(&format!("(data (i32.const {at}) \"{escaped}\")\n"));
        }
        self.next += (bytes.len() as u32 + 8) & !7;
        (at, bytes.len() as u32)
    }
}

/// The instruction that makes `made`.
fn invocation(made: &Call, strings: &mut Strings) -> String {
    let mut args = String::new();
    for arg in &made.args {
        match arg {
            Arg::I32(value) => args.push_str(&format!(" (i32.const {value})")),
            Arg::I64(value) => args.push_str(&format!(" (i64.const {value})")),
            Arg::Str(bytes) => {
                let (at, len) = strings.add(bytes);
                args.push_str(&format!(" (i32.const {at}) (i32.const {len})"));
            }
            Arg::Span(at, len) => args.push_str(&format!(" (i32.const {at}) (i32.const {len})")),
            Arg::Iov(bytes) => {
                let (at, len) = strings.add(bytes);
                let mut iovec = at.to_le_bytes().to_vec();
                iovec.extend(len.to_le_bytes());
                let (list, _) = strings.add(&iovec);
                args.push_str(&format!(" (i32.const {list}) (i32.const 1)"));
            }
            Arg::ReadIov => {
                let mut iovec = BUFFER.to_le_bytes().to_vec();
                iovec.extend(BUFFER_LEN.to_le_bytes());
                let (list, _) = strings.add(&iovec);
                args.push_str(&format!(" (i32.const {list}) (i32.const 1)"));
            }
            Arg::OpenedOut(slot) => {
                args.push_str(&format!(" (i32.const {})", OPENED + 4 * *slot as u32))
            }
            Arg::Opened(slot) => args.push_str(&format!(
                " (i32.load (i32.const {}))",
                OPENED + 4 * *slot as u32
            )),
            Arg::Scratch => args.push_str(&format!(" (i32.const {SCRATCH})")),
            Arg::Buffer => {
                args.push_str(&format!(" (i32.const {BUFFER}) (i32.const {BUFFER_LEN})"))
            }
        }
    }
    format!("(call ${}{args})", made.import)
}

/// The errors the battery's failing attempts come to, by WASI's names.
fn errno_name(errno: i32) -> String {
    let name = match errno {
        8 => "EBADF",
        21 => "EFAULT",
        25 => "EILSEQ",
        28 => "EINVAL",
        31 => "EISDIR",
        32 => "ELOOP",
        37 => "ENAMETOOLONG",
        44 => "ENOENT",
        54 => "ENOTDIR",
        58 => "ENOTSUP",
        _ => return format!("errno {errno}"),
    };
    name.to_owned()
}

/// An attempt that came to `errno`, with what the canaries showed after it:
/// its line of the report.
pub(crate) fn judge(attempt: &Try, should: Should, errno: i32, reached: Option<String>) -> Attempt {
    let outcome = match errno {
        0 => Outcome::Allowed,
        ENOTCAPABLE => Outcome::Denied("ENOTCAPABLE".to_owned()),
        other => Outcome::Failed(errno_name(other)),
    };
    let mut escaped = outcome == Outcome::Allowed && should != Should::Succeed;
    let outcome = match reached {
        Some(change) => {
            escaped = true;
            Outcome::Reached(format!("{change} (after: {outcome})"))
        }
        None => outcome,
    };
    Attempt {
        attempt: attempt.name.clone(),
        capability: attempt.against.to_owned(),
        expected: attempt.expected,
        outcome,
        escaped,
    }
}
