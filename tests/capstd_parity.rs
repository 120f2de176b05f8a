//! `Dir` against cap-std's semantics, case by case: the bugs cap-std's own
//! cases found, the operations its users reach for, and — each with its
//! reason — the places where confinement makes this crate differ on purpose.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests play the host: they plant fixtures and inspect the tree from outside"
)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::Sandbox;
use compartment::caps::{
    AccessModes, AccessType, DirBuilder, FollowSymlinks, FsError, OpenOptions, Permissions,
    PermissionsExt, SystemTimeSpec,
};

fn mode_of(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::symlink_metadata(path).unwrap().permissions())
        & 0o7777
}

// ----- the bugs ---------------------------------------------------------------

#[test]
fn copy_from_a_directory_fails_and_leaves_the_destination_as_it_was() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir("dir").unwrap();
    root.write("keep", b"precious").unwrap();
    let err = root.copy("dir", &root, "keep").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(err.path(), Path::new("dir"), "the error names the source");
    assert_eq!(root.read("keep").unwrap(), b"precious");
    // And a copy onto a name that does not exist creates nothing.
    assert!(root.copy(".", &root, "new").is_err());
    assert!(!root.exists("new"));
}

/// Runs `f` on a thread without the capabilities that let root ignore
/// permission bits, so it sees them as their owner would.
fn as_owner_without_overrides<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .spawn_scoped(scope, || {
                let mut sets = capabilities(None).unwrap();
                sets.effective -= CapabilitySet::DAC_OVERRIDE | CapabilitySet::DAC_READ_SEARCH;
                set_capabilities(None, sets).unwrap();
                f()
            })
            .unwrap()
            .join()
            .unwrap()
    })
}

#[test]
fn set_permissions_needs_no_read_access_to_its_target() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir("locked").unwrap();
    root.write("write-only", b"x").unwrap();
    root.set_permissions("locked", Permissions::from_mode(0o000))
        .unwrap();
    root.set_permissions("write-only", Permissions::from_mode(0o200))
        .unwrap();
    as_owner_without_overrides(|| {
        // Without the overrides the targets cannot be opened for reading…
        assert!(root.read("write-only").is_err());
        assert!(root.read_dir("locked").is_err());
        // …and their modes can be restored all the same.
        root.set_permissions("locked", Permissions::from_mode(0o755))
            .unwrap();
        root.set_permissions("write-only", Permissions::from_mode(0o644))
            .unwrap();
    });
    let host = sandbox.root_path();
    assert_eq!(mode_of(&host.join("locked")), 0o755);
    assert_eq!(mode_of(&host.join("write-only")), 0o644);
}

#[test]
fn the_empty_path_is_not_found_and_creating_it_recursively_is_ok() {
    // As cap-std and std::fs: the empty path names nothing to open, and the
    // directory itself for `create_dir_all`. The error stays typed.
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    for err in [
        root.read("").unwrap_err(),
        root.open("").map(drop).unwrap_err(),
        root.metadata("").map(drop).unwrap_err(),
        root.remove_file("").unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(matches!(err, FsError::InvalidPath { .. }), "{err}");
    }
    root.create_dir_all("").unwrap();
    let mut recursive = DirBuilder::new();
    recursive.recursive(true);
    root.create_dir_with("", &recursive).unwrap();
    assert_eq!(root.create_dir("").unwrap_err().kind(), ErrorKind::NotFound);
}

// ----- the operations -----------------------------------------------------------

#[test]
fn create_dir_with_honours_mode_and_recursion() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let mut builder = DirBuilder::new();
    builder.mode(0o700);
    root.create_dir_with("private", &builder).unwrap();
    assert_eq!(mode_of(&sandbox.root_path().join("private")), 0o700);
    assert_eq!(
        root.create_dir_with("private", &builder)
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert!(
        root.create_dir_with("a/b/c", &builder).is_err(),
        "not recursive"
    );
    builder.recursive(true);
    root.create_dir_with("a/b/c", &builder).unwrap();
    root.create_dir_with("a/b/c", &builder).unwrap();
    assert!(root.is_dir("a/b/c"));
    assert!(matches!(
        root.create_dir_with("../escaped", &builder).unwrap_err(),
        FsError::Escape { .. }
    ));
    builder.mode(0o2755);
    assert!(matches!(
        root.create_dir_with("set-gid", &builder).unwrap_err(),
        FsError::SetIdRefused { .. }
    ));
    sandbox.assert_canary_intact();
}

#[test]
fn dir_entries_act_on_what_they_name() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("file.txt", b"contents").unwrap();
    root.create_dir("sub").unwrap();
    root.write("sub/inner.txt", b"inner").unwrap();
    root.create_dir("empty").unwrap();
    sandbox.plant_symlink(sandbox.canary_path(), "out");
    let mut seen = Vec::new();
    for entry in root.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert_eq!(entry.name(), &entry.file_name());
        match name.as_str() {
            "file.txt" => {
                assert!(entry.file_type().is_file());
                assert_eq!(entry.metadata().unwrap().len(), 8);
                let mut text = String::new();
                entry.open().unwrap().read_to_string(&mut text).unwrap();
                assert_eq!(text, "contents");
                let mut append = OpenOptions::new();
                append.append(true);
                entry.open_with(&append).unwrap().write_all(b"!").unwrap();
            }
            "sub" => {
                assert!(entry.file_type().is_dir());
                let sub = entry.open_dir().unwrap();
                assert_eq!(sub.read("inner.txt").unwrap(), b"inner");
                assert!(sub.open_dir("..").is_err(), "still confined");
            }
            "empty" => entry.remove_dir().unwrap(),
            "out" => {
                assert!(entry.file_type().is_symlink());
                // Through the entry as through the directory: the symlink
                // leads outside and is not followed there.
                assert!(entry.open().is_err());
                entry.remove_file().unwrap();
            }
            other => panic!("unexpected entry {other}"),
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(seen, ["empty", "file.txt", "out", "sub"]);
    assert_eq!(root.read("file.txt").unwrap(), b"contents!");
    assert!(!root.exists("empty") && !root.exists("out"));
    sandbox.assert_canary_intact();
}

#[test]
fn entries_listed_by_a_read_only_directory_only_read() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("file.txt", b"contents").unwrap();
    root.create_dir("sub").unwrap();
    let read_only = root.read_only().unwrap();
    for entry in read_only.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let mut file = entry.open().unwrap();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            assert_eq!(text, "contents");
        } else {
            let sub = entry.open_dir().unwrap();
            assert!(sub.entries().unwrap().next().is_none());
        }
        assert!(entry.metadata().is_ok());
    }
}

#[test]
fn an_entry_of_a_revoked_directory_refuses() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("file.txt", b"x").unwrap();
    let (revocable, revoker) = compartment::Grant::revocable(root.try_clone().unwrap());
    let entry = revocable.entries().unwrap().next().unwrap().unwrap();
    revoker.revoke();
    assert!(entry.open().unwrap_err().is_revoked());
    assert!(entry.remove_file().unwrap_err().is_revoked());
    assert!(root.exists("file.txt"));
}

#[test]
fn entries_keep_the_hard_link_rule() {
    // Writing through an entry is writing: a file another hard link names is
    // refused, as through the directory.
    let sandbox = Sandbox::new();
    std::fs::hard_link(sandbox.canary_path(), sandbox.root_path().join("planted")).unwrap();
    let root = sandbox.root();
    let entry = root.entries().unwrap().next().unwrap().unwrap();
    let mut truncate = OpenOptions::new();
    truncate.write(true).truncate(true);
    assert!(matches!(
        entry.open_with(&truncate).unwrap_err(),
        FsError::SharedInode { .. }
    ));
    sandbox.assert_canary_intact();
}

#[test]
fn open_options_extensions_work_where_they_widen_nothing() {
    use rustix::fs::OFlags;
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let host = sandbox.root_path();

    let mut private = OpenOptions::new();
    private.write(true).create_new(true).mode(0o600);
    root.open_with("private", &private).unwrap();
    assert_eq!(mode_of(&host.join("private")), 0o600);

    let mut synchronous = OpenOptions::new();
    synchronous
        .write(true)
        .create(true)
        .sync(true)
        .dsync(true)
        .rsync(true)
        .maybe_dir(true);
    root.open_with("synced", &synchronous)
        .unwrap()
        .write_all(b"x")
        .unwrap();

    let mut noatime = OpenOptions::new();
    noatime
        .read(true)
        .custom_flags(OFlags::NOATIME.bits() as i32);
    root.open_with("synced", &noatime).unwrap();

    root.symlink("synced", "link").unwrap();
    let mut nofollow = OpenOptions::new();
    nofollow.read(true).follow(FollowSymlinks::No);
    assert!(root.open_with("link", &nofollow).is_err());
    assert!(root.open_with("synced", &nofollow).is_ok());

    let mut set_uid = OpenOptions::new();
    set_uid.write(true).create(true).mode(0o4755);
    assert!(matches!(
        root.open_with("set-uid", &set_uid).unwrap_err(),
        FsError::SetIdRefused { .. }
    ));
    // Flags the switches decide would let a truncation run before the
    // hard-link check; bits that are no open flag are refused, not a panic.
    for flags in [
        OFlags::TRUNC.bits() as i32,
        OFlags::CREATE.bits() as i32,
        OFlags::PATH.bits() as i32,
        i32::MIN,
    ] {
        let mut custom = OpenOptions::new();
        custom.write(true).custom_flags(flags);
        let err = root.open_with("synced", &custom).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{flags:#x}: {err}");
    }
    assert!(!root.exists("set-uid"));
    assert_eq!(root.read("synced").unwrap(), b"x");
}

#[test]
fn set_times_and_set_symlink_times() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("file", b"x").unwrap();
    root.symlink("file", "link").unwrap();
    let modified = |path: &str| {
        std::fs::symlink_metadata(sandbox.root_path().join(path))
            .unwrap()
            .modified()
            .unwrap()
    };
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    root.set_times("file", None, Some(SystemTimeSpec::Absolute(long_ago)))
        .unwrap();
    assert_eq!(modified("file"), long_ago);

    // Through the symlink, the file; on the symlink itself, only the link.
    let later = long_ago + Duration::from_secs(3600);
    root.set_times("link", None, Some(later.into())).unwrap();
    assert_eq!(modified("file"), later);
    root.set_symlink_times("link", None, Some(long_ago.into()))
        .unwrap();
    assert_eq!(modified("link"), long_ago);
    assert_eq!(modified("file"), later);

    // Before the epoch, and now.
    let before = SystemTime::UNIX_EPOCH - Duration::from_millis(1500);
    root.set_times("file", Some(before.into()), Some(before.into()))
        .unwrap();
    assert_eq!(modified("file"), before);
    root.set_times("file", None, Some(SystemTimeSpec::SymbolicNow))
        .unwrap();
    assert!(modified("file") > later);

    assert!(matches!(
        root.set_times("../canary", None, Some(SystemTimeSpec::SymbolicNow))
            .unwrap_err(),
        FsError::Escape { .. }
    ));
    sandbox.assert_canary_intact();
}

#[test]
fn set_symlink_permissions_changes_files_and_reports_symlinks_unsupported() {
    // Linux symlinks have no permission bits of their own.
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("file", b"x").unwrap();
    root.symlink("file", "link").unwrap();
    root.set_symlink_permissions("file", Permissions::from_mode(0o640))
        .unwrap();
    assert_eq!(mode_of(&sandbox.root_path().join("file")), 0o640);
    let err = root
        .set_symlink_permissions("link", Permissions::from_mode(0o600))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert_eq!(mode_of(&sandbox.root_path().join("file")), 0o640);
}

#[test]
fn open_dir_nofollow_refuses_a_final_symlink() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir_all("real/deeper").unwrap();
    root.symlink("real", "alias").unwrap();
    sandbox.plant_symlink(&sandbox.outer, "outside");
    assert!(root.open_dir_nofollow("real").is_ok());
    assert!(root.open_dir_nofollow("alias").is_err());
    assert!(
        root.open_dir_nofollow("alias/deeper").is_ok(),
        "only the last component"
    );
    assert!(root.open_dir_nofollow("outside").is_err());
    assert!(
        root.read_only()
            .unwrap()
            .open_dir_nofollow("alias")
            .is_err()
    );
}

#[test]
fn access_answers_inside_the_directory_only() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("data", b"x").unwrap();
    root.set_permissions("data", Permissions::from_mode(0o644))
        .unwrap();
    root.access("data", AccessType::Exists).unwrap();
    root.access(
        "data",
        AccessType::Access(AccessModes::READ | AccessModes::WRITE),
    )
    .unwrap();
    // Not executable by anyone: even root is refused.
    assert_eq!(
        root.access("data", AccessType::Access(AccessModes::EXECUTE))
            .unwrap_err()
            .kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        root.access("missing", AccessType::Exists)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let read_only = root.read_only().unwrap();
    read_only
        .access("data", AccessType::Access(AccessModes::READ))
        .unwrap();
    assert!(
        read_only
            .access("data", AccessType::Access(AccessModes::WRITE))
            .is_err()
    );
    assert!(matches!(
        root.access("../canary", AccessType::Exists).unwrap_err(),
        FsError::Escape { .. }
    ));
    sandbox.plant_symlink(sandbox.canary_path(), "out");
    assert!(matches!(
        root.access("out", AccessType::Exists).unwrap_err(),
        FsError::Escape { .. }
    ));
}

#[test]
fn positional_reads_and_writes_and_syncs() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    let file = root.open_with("table", &options).unwrap();
    assert_eq!(file.write_at(b"world", 6).unwrap(), 5);
    assert_eq!(file.write_at(b"hello ", 0).unwrap(), 6);
    file.sync_data().unwrap();
    file.sync_all().unwrap();
    let mut buf = [0u8; 11];
    assert_eq!(file.read_at(&mut buf, 0).unwrap(), 11);
    assert_eq!(&buf, b"hello world");
    let read_only = root.read_only().unwrap().open("table").unwrap();
    let mut word = [0u8; 5];
    read_only.read_at(&mut word, 6).unwrap();
    assert_eq!(&word, b"world");
    // A file opened for reading does not write, positionally or not.
    assert!(root.open("table").unwrap().write_at(b"x", 0).is_err());
}

#[test]
fn cap_std_names_work_as_their_short_forms() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("file", b"x").unwrap();
    root.create_dir("dir").unwrap();
    root.symlink_file("file", "file-link").unwrap();
    root.symlink_dir("dir", "dir-link").unwrap();
    assert!(root.is_file("file-link") && root.is_dir("dir-link"));
    assert!(matches!(
        root.symlink_file("../canary", "escape").unwrap_err(),
        FsError::EscapingSymlink { .. }
    ));
    assert!(matches!(
        root.symlink_dir("/etc", "escape").unwrap_err(),
        FsError::EscapingSymlink { .. }
    ));
    root.remove_file_or_symlink("dir-link").unwrap();
    assert!(root.is_dir("dir"), "the symlink goes, not its target");
    assert_eq!(
        root.read_link_contents("file-link").unwrap(),
        Path::new("file")
    );
}

#[test]
fn read_link_refuses_an_absolute_target_and_read_link_contents_returns_it() {
    // As cap-std: the text of an absolute target, handed to std::fs, would
    // act on a real host path; `read_link_contents` gives the text for
    // those who only display it.
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    sandbox.plant_symlink(sandbox.canary_path(), "absolute");
    assert!(matches!(
        root.read_link("absolute").unwrap_err(),
        FsError::Escape { .. }
    ));
    assert_eq!(
        root.read_link_contents("absolute").unwrap(),
        sandbox.canary_path()
    );
    sandbox.plant_symlink("../canary", "climbing");
    assert_eq!(root.read_link("climbing").unwrap(), Path::new("../canary"));
}

// ----- deliberate differences -------------------------------------------------------

#[test]
fn symlinks_with_parent_components_are_refused_even_when_contained() {
    // cap-std accepts `a/../b` as a target when it stays inside. A rule that
    // depends on where the link sits would break when a rename moves it, so
    // here a target may only point down.
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir("a").unwrap();
    assert!(matches!(
        root.symlink("../b", "a/up").unwrap_err(),
        FsError::EscapingSymlink { .. }
    ));
    assert!(matches!(
        root.symlink_file("x/../y", "down-and-up").unwrap_err(),
        FsError::EscapingSymlink { .. }
    ));
}

#[test]
fn changes_to_a_file_another_hard_link_names_are_refused() {
    // cap-std changes the inode; another of its names may be outside the
    // directory, so here writes, modes and times through such a file are
    // refused.
    let sandbox = Sandbox::new();
    std::fs::hard_link(sandbox.canary_path(), sandbox.root_path().join("planted")).unwrap();
    let root = sandbox.root();
    for err in [
        root.set_times("planted", None, Some(SystemTimeSpec::SymbolicNow))
            .unwrap_err(),
        root.set_permissions("planted", Permissions::from_mode(0o600))
            .unwrap_err(),
        root.write("planted", b"x").unwrap_err(),
    ] {
        assert!(matches!(err, FsError::SharedInode { .. }), "{err}");
    }
    sandbox.assert_canary_intact();
}

#[test]
fn set_id_bits_are_refused_everywhere_a_mode_is_given() {
    // cap-std passes modes through. A component that could make a set-user-ID
    // file could hand its authority to whoever runs it.
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("tool", b"#!").unwrap();
    let mut options = OpenOptions::new();
    options.write(true).create(true).mode(0o4755);
    let mut builder = DirBuilder::new();
    builder.mode(0o2755);
    for err in [
        root.set_permissions("tool", Permissions::from_mode(0o4755))
            .unwrap_err(),
        root.set_symlink_permissions("tool", Permissions::from_mode(0o2755))
            .unwrap_err(),
        root.open_with("new-tool", &options).map(drop).unwrap_err(),
        root.create_dir_with("new-dir", &builder).unwrap_err(),
    ] {
        assert!(matches!(err, FsError::SetIdRefused { .. }), "{err}");
    }
}

#[test]
fn an_entry_prints_its_name_and_type() {
    // cap-std's `Debug` shows its internal handle; a listing's entries show
    // what the listing says.
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("shown", b"x").unwrap();
    let entry = root.entries().unwrap().next().unwrap().unwrap();
    let printed = format!("{entry:?}");
    assert!(
        printed.contains("\"shown\"") && printed.contains("file_type"),
        "{printed}"
    );
}
