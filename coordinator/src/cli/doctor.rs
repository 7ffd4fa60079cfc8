//! `accelbench doctor`: what the coordinator's host needs, checked one by one with what to
//! do: its state folder (writable, free space), the warehouse (opens, its files listed,
//! free space when it is a folder), and, given `--coordinator`, a running coordinator
//! (answers, clock). Read-only but for a probe file written and removed in each folder.

use std::path::PathBuf;
use std::process::ExitCode;

use agent::doctor::{self, Check, Verdict};
use clap::Args;

use super::common::WarehouseArgs;
use crate::warehouse::schema::Table;

#[derive(Debug, Args)]
#[command(long_about = "Check what `accelbench serve` needs on this machine: its state folder \
(--data-dir: writable, free space), the warehouse (--warehouse: opens, files listed, free space \
when it is a folder) and, with --coordinator, a running coordinator (answers, and this machine's \
clock against its clock) with the credentials given (--ca, --cert/--key or --token-file), and \
the expiry of each certificate named (--tls-cert, --ca, --cert). Each finding is ok, warn or FAIL, with what to do. Exits 1 if \
anything FAILs.\n\nExample:\n  accelbench doctor --data-dir /var/lib/accelbench-coordinator/raft \
--warehouse /var/lib/accelbench-coordinator/warehouse --coordinator https://127.0.0.1:7070 \
--tls-cert /etc/accelbench/node-coord1.pem --ca /etc/accelbench/ca.pem --cert admin.pem --key admin.key")]
pub struct DoctorArgs {
    /// The coordinator's state folder (`serve --data-dir`)
    #[arg(long, value_name = "DIR", default_value = "./accelbench-coordinator")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// A running coordinator to check (gRPC address)
    #[arg(long, env = "ACCELBENCH_COORDINATOR", value_name = "URL")]
    pub coordinator: Option<String>,
    #[command(flatten)]
    pub credentials: super::sweep::CredentialArgs,
    /// The node's own certificate (`serve --tls-cert`), checked for expiry
    #[arg(long, env = "ACCELBENCH_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
}

pub async fn execute(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut checks =
        vec![doctor::folder_check(&format!("state {}", args.data_dir.display()), &args.data_dir, "--data-dir")];
    checks.extend(warehouse_checks(&args.warehouse).await);
    let auth = args.credentials.auth()?;
    let certs =
        [("node certificate", &args.tls_cert), ("CA certificate", &auth.ca), ("client certificate", &auth.cert)];
    checks.extend(certs.into_iter().filter_map(|(what, p)| p.as_ref().map(|p| doctor::certificate_check(what, p))));
    checks.extend(doctor::coordinator_checks(args.coordinator.as_deref(), &auth).await);
    print!("{}", doctor::render(&checks));
    let failed = checks.iter().any(|c| c.verdict == Verdict::Fail);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

async fn warehouse_checks(args: &WarehouseArgs) -> Vec<Check> {
    let what = format!("warehouse {}", args.warehouse);
    let fix = "check --warehouse (a folder, or s3:// with AWS_* credentials) and that it is reachable";
    let warehouse = match args.open().await {
        Ok(w) => w,
        Err(e) => return vec![Check::new(what, Verdict::Fail, format!("does not open: {e:#}"), Some(fix))],
    };
    let mut checks = vec![match warehouse.live_files(Table::Results).await {
        Ok(files) => Check::new(what, Verdict::Ok, format!("opens; {} result files committed", files.len()), None),
        Err(e) => Check::new(what, Verdict::Fail, format!("its manifest cannot be read: {e}"), Some(fix)),
    }];
    if let Some(root) = warehouse.local_root() {
        checks.push(doctor::folder_check(&format!("warehouse folder {}", root.display()), root, "--warehouse"));
    }
    checks
}
