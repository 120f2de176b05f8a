//! How to prove a component's permission boundary, in the lines a test
//! needs.
//!
//! Run it with `cargo run --example boundary_test --features testkit`. In
//! your own crate the body of `main` is a `#[test]` (with `compartment`'s
//! `testkit` feature enabled for dev-dependencies): it builds a sandbox,
//! grants the component what it needs, checks what it may and may not do,
//! runs the escape battery over the grant, and runs the component itself.

use compartment::caps::{Dir, FsError, ReadOnlyDir};
use compartment::testkit::{Harness, Sandbox, probe};
use compartment::{Context, Grant, ambient_authority, assert_allowed, assert_denied};

/// The component under test: makes a thumbnail of a document.
#[derive(Grant)]
struct Thumbnails {
    originals: ReadOnlyDir,
    thumbs: Dir,
}

fn thumbnail(g: Thumbnails, _: &Context) -> Result<(), FsError> {
    let original = g.originals.read("readme.md")?;
    g.thumbs.write("readme.thumb", &original[..2])
}

#[allow(clippy::disallowed_methods, reason = "the test is the granting side")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The boundary test, as it would stand in a #[test]:
    let sandbox = Sandbox::standard(ambient_authority())?;
    let root = sandbox.dir()?;
    let grant = Thumbnails {
        originals: root.open_dir("docs")?.into_read_only(),
        thumbs: root.open_dir("docs/deep")?,
    };
    assert_allowed!(grant.originals.read("latest"));
    assert_denied!(grant.originals.read("../links/abs-canary"));
    assert_denied!(grant.thumbs.read("../../notes.txt"));
    probe(&grant).assert_contained();
    let run = Harness::new("thumbnail", thumbnail, grant).run()?;
    assert!(run.completed(), "{:?}", run.exit);
    sandbox.canary().check()?;
    // That is all; the rest shows what happened.

    println!("the component ran: {:?}", run.exit);
    println!(
        "it wrote: {:?}",
        root.read_to_string("docs/deep/readme.thumb")?
    );
    Ok(())
}
