//! The benchmark program: `cargo run --release -p cmdreporter-tests --bin bench -- [SECTION...] [--quick]`.
//! With no section, every section runs. Prints one JSON object per measurement.
//! Options of the `runs` section: `--runs=N`, `--concurrency=1,16,256`,
//! `--transport=configmap|logs` (for profiling one case).

use cmdreporter_tests::bench;

#[path = "bench/fake_api.rs"]
mod fake_api;
#[path = "bench/kubelet.rs"]
mod kubelet;
#[path = "bench/logs.rs"]
mod logs;

#[global_allocator]
static ALLOC: bench::alloc::Counting = bench::alloc::Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sections: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let wants = |s: &str| sections.is_empty() || sections.contains(&s);
    let plan = match bench::runs::Plan::from_args(quick, &args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(async {
        if wants("runs") {
            let per_run = bench::runs::run(&plan).await;
            // The floor for the same number of round trips, in the same process and run.
            if let Some((requests, seconds)) = per_run {
                let floor = bench::floor::run(requests, quick).await;
                println!(
                    "{}",
                    serde_json::json!({"section": "floor-ratio", "concurrency": 1,
                        "run_cost_us": seconds * 1e6, "floor_us": floor * 1e6,
                        "ratio": seconds / floor})
                );
            }
        }
        if wants("detect") {
            bench::detect::run(quick).await;
        }
        if wants("process") {
            bench::process::run(quick).await;
        }
        if wants("largest") {
            bench::largest::run(quick).await;
        }
        if wants("soak") {
            bench::soak::run(quick).await;
        }
        if wants("scale") {
            bench::scale::run(quick).await;
        }
        if wants("logs") {
            logs::run(quick).await;
        }
        if wants("fake-api") {
            fake_api::run(quick).await;
        }
        if wants("kubelet") {
            kubelet::run(quick).await;
        }
    });
}
