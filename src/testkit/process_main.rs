//! A `main` for integration tests whose tests start process children.

use crate::fault;
use crate::process::{self, Registered};

/// One test for [`process_main`]: its name, and its body (a panic fails it).
///
/// # Examples
///
/// ```
/// use compartment::testkit::ProcessTest;
///
/// fn the_plugin_starts() {}
///
/// const TESTS: &[ProcessTest] = &[("the_plugin_starts", the_plugin_starts)];
/// assert_eq!(TESTS[0].0, "the_plugin_starts");
/// ```
pub type ProcessTest = (&'static str, fn());

/// The `main` of an integration-test binary whose tests start process
/// children ([`Child::process`](crate::Child::process)).
///
/// The process tier's zygote must be forked while the program has one
/// thread, before any test runs, which the standard test harness does not
/// allow. Declare the binary with `harness = false` and make this its
/// `main`: it calls [`process::init`] with `entries`, then runs each test
/// in `tests` in turn — those whose name contains the first argument that
/// is not a flag, as `cargo test NAME` selects them — prints one line per
/// test and a summary as the standard harness does, and exits with status
/// 101 if any failed. `--list` prints the names.
///
/// ```toml
/// [[test]]
/// name = "plugins"
/// harness = false
/// ```
///
/// ```no_run
/// use compartment::{Child, Context, Supervisor, entry};
///
/// fn plugin(_: (), _: &Context) -> Result<(), std::io::Error> {
///     Ok(())
/// }
///
/// fn the_plugin_starts() {
///     let system = Supervisor::new("host")
///         .child(Child::process("plugin", entry!(plugin), ()))
///         .start()
///         .unwrap();
///     system.shutdown();
/// }
///
/// fn main() {
///     compartment::testkit::process_main(
///         &[&entry!(plugin)],
///         &[("the_plugin_starts", the_plugin_starts)],
///     )
/// }
/// ```
#[allow(
    clippy::print_stdout,
    clippy::disallowed_methods,
    reason = "a test binary's main reports to the terminal and sets the exit status, as the standard harness does"
)]
pub fn process_main(entries: &[&dyn Registered], tests: &[ProcessTest]) -> ! {
    if let Err(err) = process::init(entries) {
        println!("the process tier could not start: {err}");
        std::process::exit(101);
    }
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let filter = arguments.iter().find(|arg| !arg.starts_with('-'));
    let selected: Vec<&ProcessTest> = tests
        .iter()
        .filter(|(name, _)| filter.is_none_or(|filter| name.contains(filter.as_str())))
        .collect();
    if arguments.iter().any(|arg| arg == "--list") {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        std::process::exit(0);
    }
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let passed = fault::contain(test).is_ok();
        println!("test {name} ... {}", if passed { "ok" } else { "FAILED" });
        if !passed {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        std::process::exit(0);
    }
    println!("failures: {failed:?}");
    std::process::exit(101)
}
