//! Temporary directory trees to test capabilities against, with a canary
//! outside that proves whether anything escaped.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use cap_std::AmbientAuthority;

use crate::caps::{Dir, FsError, ReadOnlyDir};

/// The canary's content: a file next to the sandbox root that nothing granted
/// may read, change or remove.
pub const CANARY_CONTENT: &[u8] = b"canary: nothing granted may reach this file\n";

/// Why a canary reports an escape.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{CanaryChanged, Sandbox};
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// // Changed from outside the capabilities, as an escape would:
/// std::fs::write(sandbox.canary().path(), "rewritten")?;
/// assert!(matches!(sandbox.canary().check(), Err(CanaryChanged::Rewritten(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
#[non_exhaustive]
pub enum CanaryChanged {
    /// The canary file is gone or unreadable.
    #[error("the canary at `{}` is gone", .0.display())]
    Removed(PathBuf),
    /// Its content changed.
    #[error("the canary at `{}` was rewritten", .0.display())]
    Rewritten(PathBuf),
    /// Its modification time changed.
    #[error("the canary at `{}` was touched (its mtime changed)", .0.display())]
    Touched(PathBuf),
    /// Something appeared next to it, outside the sandbox.
    #[error("`{}` appeared outside the sandbox", .0.display())]
    Created(PathBuf),
}

/// A sandbox could not be set up: what was being done, and the operating
/// system's error.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{Sandbox, SandboxError};
/// fn fixture() -> Result<Sandbox, SandboxError> {
///     Sandbox::builder()
///         .file("notes.txt", "hello")
///         .build(compartment::ambient_authority())
/// }
/// assert_eq!(fixture()?.dir()?.read_to_string("notes.txt")?, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[error("could not {what}: {source}")]
pub struct SandboxError {
    what: String,
    #[source]
    source: std::io::Error,
}

impl SandboxError {
    pub(crate) fn new(what: impl Into<String>, source: std::io::Error) -> Self {
        Self {
            what: what.into(),
            source,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError { what, source }
}

/// A file outside everything granted, with the directory that holds it:
/// its content, modification time and its directory's listing prove that
/// nothing escaped.
///
/// # Examples
///
/// ```
/// let sandbox = compartment::testkit::Sandbox::standard(compartment::ambient_authority())?;
/// let _ = sandbox.dir()?.write("../../canary", "x");
/// assert!(sandbox.canary().is_intact());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Canary {
    path: PathBuf,
    mtime: SystemTime,
    listing: BTreeSet<OsString>,
}

#[allow(
    clippy::disallowed_methods,
    reason = "the testkit is the host side: it inspects the world outside the capabilities"
)]
impl Canary {
    /// Writes a canary at `path` and remembers how `path`'s directory looks.
    pub(crate) fn plant(path: PathBuf) -> Result<Self, SandboxError> {
        std::fs::write(&path, CANARY_CONTENT)
            .map_err(io_err(format!("write the canary {}", path.display())))?;
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(io_err("read the canary's mtime"))?;
        let mut canary = Self {
            path,
            mtime,
            listing: BTreeSet::new(),
        };
        canary.listing = canary.list();
        Ok(canary)
    }

    fn list(&self) -> BTreeSet<OsString> {
        self.path
            .parent()
            .and_then(|dir| std::fs::read_dir(dir).ok())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The canary's host path.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// assert!(!sandbox.canary().path().starts_with(sandbox.root_path())); // outside the root
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the canary (outside every granted directory).
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// assert!(sandbox.canary().path().starts_with(sandbox.canary().dir()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// `Ok` while the canary and its directory are as planted.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// let dir = sandbox.dir()?;
    /// let _ = dir.write("../canary", "overwritten"); // refused
    /// sandbox.canary().check()?; // unchanged
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first change found.
    pub fn check(&self) -> Result<(), CanaryChanged> {
        match std::fs::read(&self.path) {
            Err(_) => return Err(CanaryChanged::Removed(self.path.clone())),
            Ok(content) if content != CANARY_CONTENT => {
                return Err(CanaryChanged::Rewritten(self.path.clone()));
            }
            Ok(_) => {}
        }
        if std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            != Some(self.mtime)
        {
            return Err(CanaryChanged::Touched(self.path.clone()));
        }
        if let Some(extra) = self.list().difference(&self.listing).next() {
            return Err(CanaryChanged::Created(self.dir().join(extra)));
        }
        Ok(())
    }

    /// Whether [`check`](Self::check) passes.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// assert!(sandbox.canary().is_intact());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_intact(&self) -> bool {
        self.check().is_ok()
    }

    /// Puts the canary back as planted (after a probe found an escape, so
    /// that the next attempt is judged on its own).
    pub(crate) fn restore(&mut self) {
        for extra in self.list().difference(&self.listing) {
            let path = self.dir().join(extra);
            let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
        }
        if let Ok(planted) = Self::plant(self.path.clone()) {
            *self = planted;
        }
    }
}

/// A fresh directory under the system's temporary directory; removed on drop.
#[derive(Debug)]
pub(crate) struct TempTree {
    pub(crate) path: PathBuf,
}

#[allow(
    clippy::disallowed_methods,
    reason = "the testkit is the host side: it creates and removes its fixtures"
)]
impl TempTree {
    pub(crate) fn new(purpose: &str) -> Result<Self, SandboxError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir();
        loop {
            let path = base.join(format!(
                "compartment-{purpose}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(io_err(format!("create {}", path.display()))(err)),
            }
        }
    }
}

impl Drop for TempTree {
    #[allow(
        clippy::disallowed_methods,
        reason = "the testkit removes its own fixtures"
    )]
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One entry of a sandbox tree, created in order by [`SandboxBuilder::build`].
#[derive(Debug, Clone)]
enum Entry {
    File(PathBuf, Vec<u8>),
    Dir(PathBuf),
    Symlink(PathBuf, PathBuf),
    ToCanary { link: PathBuf, relative: bool },
    ToOutsideDir(PathBuf),
    DanglingOutside(PathBuf),
    HardLinkToCanary(PathBuf),
    Fifo(PathBuf),
}

/// Declares a sandbox tree in a few lines.
///
/// Paths are relative to the sandbox root; parents are created as needed.
///
/// # Examples
///
/// ```
/// use compartment::testkit::Sandbox;
///
/// let sandbox = Sandbox::builder()
///     .file("originals/cat.jpg", b"meow")
///     .dir("thumbs")
///     .symlink("cat.jpg", "originals/latest.jpg")
///     .to_canary("escape") // an absolute symlink to the outside canary
///     .build(compartment::ambient_authority())?;
/// let root = sandbox.dir()?;
/// assert_eq!(root.read("originals/latest.jpg")?, b"meow");
/// assert!(root.read("escape").is_err());
/// sandbox.canary().check()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SandboxBuilder {
    entries: Vec<Entry>,
}

impl SandboxBuilder {
    /// A file with `content`.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().file("config.toml", "port = 80").build(compartment::ambient_authority())?;
    /// assert_eq!(sandbox.dir()?.read_to_string("config.toml")?, "port = 80");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file(mut self, path: impl AsRef<Path>, content: impl AsRef<[u8]>) -> Self {
        self.entries.push(Entry::File(
            path.as_ref().to_owned(),
            content.as_ref().to_owned(),
        ));
        self
    }

    /// A directory (and its parents).
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().dir("logs").build(compartment::ambient_authority())?;
    /// assert!(sandbox.dir()?.is_dir("logs"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dir(mut self, path: impl AsRef<Path>) -> Self {
        self.entries.push(Entry::Dir(path.as_ref().to_owned()));
        self
    }

    /// A symlink at `link` with the literal `target` (which may point
    /// anywhere: this is the host planting it). The target comes first, as
    /// in [`Dir::symlink`](crate::caps::Dir::symlink) and
    /// `std::os::unix::fs::symlink`.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder()
    ///     .file("notes.txt", "hi")
    ///     .symlink("notes.txt", "latest") // target first, as Dir::symlink
    ///     .build(compartment::ambient_authority())?;
    /// assert_eq!(sandbox.dir()?.read("latest")?, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn symlink(mut self, target: impl AsRef<Path>, link: impl AsRef<Path>) -> Self {
        self.entries.push(Entry::Symlink(
            link.as_ref().to_owned(),
            target.as_ref().to_owned(),
        ));
        self
    }

    /// An absolute symlink to the outside canary.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().to_canary("trap").build(compartment::ambient_authority())?;
    /// assert!(sandbox.dir()?.read("trap").is_err()); // an absolute symlink out: refused
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_canary(mut self, link: impl AsRef<Path>) -> Self {
        self.entries.push(Entry::ToCanary {
            link: link.as_ref().to_owned(),
            relative: false,
        });
        self
    }

    /// A relative symlink (`../../canary`) to the outside canary.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().to_canary_relative("trap").build(compartment::ambient_authority())?;
    /// assert!(sandbox.dir()?.read("trap").is_err()); // climbs out with ..: refused
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_canary_relative(mut self, link: impl AsRef<Path>) -> Self {
        self.entries.push(Entry::ToCanary {
            link: link.as_ref().to_owned(),
            relative: true,
        });
        self
    }

    /// An absolute symlink to the directory holding the canary.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().to_outside_dir("door").build(compartment::ambient_authority())?;
    /// assert!(sandbox.dir()?.open_dir("door").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_outside_dir(mut self, link: impl AsRef<Path>) -> Self {
        self.entries
            .push(Entry::ToOutsideDir(link.as_ref().to_owned()));
        self
    }

    /// A dangling symlink to a path next to the canary that does not exist:
    /// creating a file through it would create it outside.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().dangling_outside("ghost").build(compartment::ambient_authority())?;
    /// assert!(sandbox.dir()?.write("ghost", "x").is_err()); // would create a file outside
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dangling_outside(mut self, link: impl AsRef<Path>) -> Self {
        self.entries
            .push(Entry::DanglingOutside(link.as_ref().to_owned()));
        self
    }

    /// A hard link to the canary, as a host might have planted one.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().hard_link_to_canary("alias").build(compartment::ambient_authority())?;
    /// assert!(sandbox.dir()?.write("alias", "x").is_err()); // the canary, under another name
    /// sandbox.canary().check()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hard_link_to_canary(mut self, link: impl AsRef<Path>) -> Self {
        self.entries
            .push(Entry::HardLinkToCanary(link.as_ref().to_owned()));
        self
    }

    /// A named pipe.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().fifo("pipe").build(compartment::ambient_authority())?;
    /// assert!(sandbox.dir()?.exists("pipe"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fifo(mut self, path: impl AsRef<Path>) -> Self {
        self.entries.push(Entry::Fifo(path.as_ref().to_owned()));
        self
    }

    /// Creates the tree in a new temporary directory, with the canary next
    /// to its root.
    ///
    /// # Ambient Authority
    ///
    /// Creates files on the host: test code only, on the granting side.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().file("a", "1").build(compartment::ambient_authority())?;
    /// assert!(sandbox.canary().is_intact());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SandboxError`] when a fixture cannot be created.
    pub fn build(self, ambient_authority: AmbientAuthority) -> Result<Sandbox, SandboxError> {
        let _ = ambient_authority;
        let tree = TempTree::new("sandbox")?;
        let root = tree.path.join("root");
        create_dir_all(&root)?;
        let canary = Canary::plant(tree.path.join("canary"))?;
        let sandbox = Sandbox { tree, root, canary };
        let planter = Planter {
            root: &sandbox.root,
            canary: &sandbox.canary,
        };
        for entry in self.entries {
            planter.plant(&entry)?;
        }
        Ok(sandbox)
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the testkit creates host fixtures"
)]
fn create_dir_all(path: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(path).map_err(io_err(format!("create {}", path.display())))
}

/// The relative path from directory `from` to `to`, both absolute.
pub(crate) fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let mut up = PathBuf::new();
    for _ in from.components().skip(1) {
        up.push("..");
    }
    up.join(to.strip_prefix("/").unwrap_or(to))
}

/// Plants fixtures below a host directory.
pub(crate) struct Planter<'a> {
    pub(crate) root: &'a Path,
    pub(crate) canary: &'a Canary,
}

#[allow(
    clippy::disallowed_methods,
    reason = "the testkit plants host fixtures"
)]
impl Planter<'_> {
    fn prepare(&self, path: &Path) -> Result<PathBuf, SandboxError> {
        let full = self.root.join(path);
        if let Some(parent) = full.parent() {
            create_dir_all(parent)?;
        }
        Ok(full)
    }

    pub(crate) fn symlink(&self, link: &Path, target: &Path) -> Result<(), SandboxError> {
        let full = self.prepare(link)?;
        std::os::unix::fs::symlink(target, &full)
            .map_err(io_err(format!("plant symlink {}", full.display())))
    }

    pub(crate) fn file(&self, path: &Path, content: &[u8]) -> Result<(), SandboxError> {
        let full = self.prepare(path)?;
        std::fs::write(&full, content).map_err(io_err(format!("write {}", full.display())))
    }

    fn plant(&self, entry: &Entry) -> Result<(), SandboxError> {
        match entry {
            Entry::File(path, content) => self.file(path, content),
            Entry::Dir(path) => create_dir_all(&self.root.join(path)),
            Entry::Symlink(link, target) => self.symlink(link, target),
            Entry::ToCanary { link, relative } => {
                let target = if *relative {
                    let parent = self.root.join(link);
                    let parent = parent.parent().unwrap_or(self.root);
                    relative_path(parent, self.canary.path())
                } else {
                    self.canary.path().to_owned()
                };
                self.symlink(link, &target)
            }
            Entry::ToOutsideDir(link) => self.symlink(link, self.canary.dir()),
            Entry::DanglingOutside(link) => self.symlink(
                link,
                &self.canary.dir().join("created-through-a-dangling-link"),
            ),
            Entry::HardLinkToCanary(link) => {
                let full = self.prepare(link)?;
                std::fs::hard_link(self.canary.path(), &full)
                    .map_err(io_err(format!("hard-link {}", full.display())))
            }
            Entry::Fifo(path) => {
                let full = self.prepare(path)?;
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &full,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    0,
                )
                .map_err(|errno| io_err(format!("make fifo {}", full.display()))(errno.into()))
            }
        }
    }
}

/// A temporary directory tree with a canary next to its root; removed on
/// drop.
///
/// [`Sandbox::standard`] builds the tree the escape battery and most
/// boundary tests want; [`Sandbox::builder`] declares any other.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{Sandbox, probe};
///
/// // A root with traps planted in it, and a canary outside it.
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// probe(&sandbox.dir()?).assert_contained();
/// sandbox.canary().check()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Sandbox {
    tree: TempTree,
    root: PathBuf,
    canary: Canary,
}

impl Sandbox {
    /// Declares a tree.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    ///
    /// let sandbox = Sandbox::builder().dir("data").build(compartment::ambient_authority())?;
    /// assert!(sandbox.read_only()?.is_dir("data"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// The standard fixture: files and nested directories, symlinks inside,
    /// symlinks to the outside (absolute and relative), a dangling symlink
    /// pointing outside, a symlink chain that ends outside, a symlink loop,
    /// a hard link to the canary, and a fifo.
    ///
    /// ```text
    /// notes.txt                  "notes"
    /// docs/readme.md             "readme"
    /// docs/deep/er/file.txt      "deep"
    /// docs/latest -> readme.md   (inside)
    /// links/abs-canary           -> <canary> (absolute)
    /// links/rel-canary           -> ../../../canary (relative)
    /// links/outside-dir          -> <canary's directory>
    /// links/dangling             -> <canary's directory>/created-through-a-dangling-link
    /// links/chain-1 -> chain-2 -> abs-canary
    /// links/loop-a <-> links/loop-b
    /// hardlink                   (a hard link to the canary)
    /// pipe                       (a fifo)
    /// ```
    ///
    /// # Ambient Authority
    ///
    /// Creates files on the host: test code only.
    ///
    /// # Errors
    ///
    /// [`SandboxError`] when a fixture cannot be created.
    pub fn standard(ambient_authority: AmbientAuthority) -> Result<Sandbox, SandboxError> {
        Self::builder()
            .file("notes.txt", "notes")
            .file("docs/readme.md", "readme")
            .file("docs/deep/er/file.txt", "deep")
            .symlink("readme.md", "docs/latest")
            .to_canary("links/abs-canary")
            .to_canary_relative("links/rel-canary")
            .to_outside_dir("links/outside-dir")
            .dangling_outside("links/dangling")
            .symlink("abs-canary", "links/chain-2")
            .symlink("chain-2", "links/chain-1")
            .symlink("loop-b", "links/loop-a")
            .symlink("loop-a", "links/loop-b")
            .hard_link_to_canary("hardlink")
            .fifo("pipe")
            .build(ambient_authority)
    }

    /// A full capability on the sandbox root.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// let dir = sandbox.dir()?;
    /// dir.write("scratch", "x")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FsError`] when the root cannot be opened.
    pub fn dir(&self) -> Result<Dir, FsError> {
        open_root(&self.root)
    }

    /// A read-only capability on the sandbox root.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// let dir = sandbox.read_only()?;
    /// assert!(dir.exists("."));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FsError`] when the root cannot be opened.
    pub fn read_only(&self) -> Result<ReadOnlyDir, FsError> {
        Ok(open_root(&self.root)?.into_read_only())
    }

    /// The canary next to the root.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// sandbox.canary().check()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn canary(&self) -> &Canary {
        &self.canary
    }

    /// The root's host path.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// assert!(sandbox.root_path().starts_with(sandbox.outer_path()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn root_path(&self) -> &Path {
        &self.root
    }

    /// The host path of the directory holding both the root and the canary.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::testkit::Sandbox;
    /// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
    /// assert!(sandbox.canary().path().starts_with(sandbox.outer_path()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn outer_path(&self) -> &Path {
        &self.tree.path
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the testkit hands out the capability it created"
)]
fn open_root(root: &Path) -> Result<Dir, FsError> {
    Dir::open_ambient_dir(root, cap_std::ambient_authority())
}
