//! `accelbench ca` and `accelbench token`: the lab's identities.
//!
//! `ca init` makes the lab CA (an ECDSA P-256 key and a self-signed certificate);
//! `ca issue` signs a certificate naming its holder (subject CN) and role (subject OU,
//! read back by [`proto::identity::CertIdentity`]). `token issue` makes a bearer token
//! for a person or script, prints it once, and keeps only its SHA-256 in the tokens file
//! the coordinator reads (`serve --tokens-file`). Keys and the tokens file are written
//! owner-only; nothing existing is overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use proto::identity::Role;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use shared::ids::AgentId;

use crate::server::auth::{TokenEntry, TokenList};

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Make the lab CA: DIR/ca.pem (give it to every machine) and DIR/ca.key (keep it safe)
    Init(InitArgs),
    /// Issue a certificate for an agent, a coordinator node or a person
    #[command(long_about = "Issue a certificate signed by the lab CA: DIR/ROLE-NAME.pem and \
DIR/ROLE-NAME.key. The name is the holder's identity: an agent's name is its agent id (the \
coordinator accepts no other from it), a user's name is recorded as `submitted_by`. A node's \
certificate is the coordinator's server certificate: list every name clients use to reach it \
with --host (default: NAME, localhost, 127.0.0.1, ::1). An agent's certificate also serves its \
metrics listener.\n\nExamples:\n  accelbench ca issue --node coord1 --host coord1.lab --host 10.0.0.5\n  \
accelbench ca issue --agent gpu-box-07\n  accelbench ca issue --user alice --role submitter")]
    Issue(IssueArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder for the CA's files
    #[arg(long, env = "ACCELBENCH_CA_DIR", default_value = "./accelbench-ca", value_name = "DIR")]
    pub dir: PathBuf,
    /// How long the CA is valid
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("holder").required(true).args(["agent", "node", "user"]))]
pub struct IssueArgs {
    /// The CA's folder (from `ca init`); the new files are written there too
    #[arg(long, env = "ACCELBENCH_CA_DIR", default_value = "./accelbench-ca", value_name = "DIR")]
    pub dir: PathBuf,
    /// An agent: NAME becomes its agent id
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// A coordinator node (server certificate, and peer identity between nodes)
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// A person or script; give --role
    #[arg(long, value_name = "NAME", requires = "role")]
    pub user: Option<String>,
    /// The user's role: admin, submitter or reader
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// A DNS name or IP address the holder is reached at (repeatable; nodes and agents)
    #[arg(long, value_name = "HOST")]
    pub host: Vec<String>,
    /// How long the certificate is valid
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
}

impl CaCommand {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            CaCommand::Init(a) => {
                let (cert, key) = init(&a.dir, a.days)?;
                println!("lab CA: {} (copy to every machine) and {} (keep it safe)", cert.display(), key.display());
            }
            CaCommand::Issue(a) => {
                let (name, role) = a.holder()?;
                let hosts = match (role, a.host.is_empty()) {
                    (Role::Agent | Role::Node, true) => default_hosts(&name),
                    (Role::Agent | Role::Node, false) => a.host.clone(),
                    (_, true) => Vec::new(),
                    (_, false) => bail!("--host is for --agent and --node certificates (they serve listeners)"),
                };
                let (cert, key) = issue(&a.dir, &name, role, &hosts, a.days)?;
                println!("{role} {name}: {} and {}", cert.display(), key.display());
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl IssueArgs {
    /// The holder's name (checked: it becomes an agent id or `submitted_by`) and role.
    fn holder(&self) -> anyhow::Result<(String, Role)> {
        let (flag, name, role) = match (&self.agent, &self.node, &self.user) {
            (Some(n), None, None) => ("--agent", n, Role::Agent),
            (None, Some(n), None) => ("--node", n, Role::Node),
            (None, None, Some(n)) => {
                let role: Role = self.role.as_deref().unwrap_or_default().parse().context("--role")?;
                if !role.is_user() {
                    bail!("--role {role}: a user is admin, submitter or reader (use --{role} NAME for a {role})");
                }
                ("--user", n, role)
            }
            _ => bail!("give one of --agent NAME, --node NAME, --user NAME --role ROLE"),
        };
        if self.role.is_some() && !role.is_user() {
            bail!("--role is for --user; {flag} certificates carry their own role");
        }
        name.parse::<AgentId>().map_err(|e| anyhow::anyhow!("{flag} {name:?}: {e}"))?;
        Ok((name.clone(), role))
    }
}

fn default_hosts(name: &str) -> Vec<String> {
    [name, "localhost", "127.0.0.1", "::1"].iter().map(|s| s.to_string()).collect()
}

/// Makes the lab CA in `dir`; refuses to replace one.
pub fn init(dir: &Path, days: u32) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let key = KeyPair::generate().context("generating the CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject("accelbench lab CA", None);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, days);
    let cert = params.self_signed(&key).context("signing the CA certificate")?;
    write_new(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_new(&cert_path, cert.pem().as_bytes(), false)?;
    Ok((cert_path, key_path))
}

/// Signs a certificate for `name` in `role` with the CA in `dir`; `hosts` become its
/// subject alternative names (DNS names or IP addresses).
pub fn issue(dir: &Path, name: &str, role: Role, hosts: &[String], days: u32) -> anyhow::Result<(PathBuf, PathBuf)> {
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read_to_string(&p)
            .with_context(|| format!("reading {} (make the CA with `accelbench ca init`)", p.display()))
    };
    let ca_key =
        KeyPair::from_pem(&read(CA_KEY)?).with_context(|| format!("{}: not a key", dir.join(CA_KEY).display()))?;
    let issuer = Issuer::from_ca_cert_pem(&read(CA_CERT)?, ca_key)
        .with_context(|| format!("{}: not a CA certificate", dir.join(CA_CERT).display()))?;
    let mut params = CertificateParams::new(hosts.to_vec()).context("--host: not a DNS name or IP address")?;
    params.distinguished_name = subject(name, Some(role));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match role {
        // Agents serve their metrics listener, nodes the coordinator's listeners.
        Role::Agent | Role::Node => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        _ => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let key = KeyPair::generate().context("generating a key")?;
    let cert = params.signed_by(&key, &issuer).context("signing the certificate")?;
    let (cert_path, key_path) = (dir.join(format!("{role}-{name}.pem")), dir.join(format!("{role}-{name}.key")));
    write_new(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_new(&cert_path, cert.pem().as_bytes(), false)?;
    Ok((cert_path, key_path))
}

fn subject(name: &str, role: Option<Role>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    if let Some(role) = role {
        dn.push(DnType::OrganizationalUnitName, role.as_str());
    }
    dn.push(DnType::OrganizationName, "accelbench");
    dn
}

/// Valid from an hour ago (clocks differ a little) for `days`, with a random serial.
fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    // 16 random bytes, first bit clear: a positive serial, as RFC 5280 asks.
    let mut serial = uuid::Uuid::new_v4().into_bytes();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
}

/// Writes a file that must not exist yet (owner-only when `secret`).
fn write_new(path: &Path, bytes: &[u8], secret: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow::anyhow!("{} exists already: not replacing it", path.display()),
            _ => anyhow::Error::new(e).context(format!("creating {}", path.display())),
        })?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", path.display()))
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a bearer token for a person or script; prints it once, stores only its hash
    #[command(long_about = "Make a bearer token for NAME with ROLE (admin, submitter or reader). \
The token is printed once on stdout; the tokens file keeps only its SHA-256, and the \
coordinator (`serve --tokens-file FILE`) re-reads the file when it changes, so issuing and \
revoking need no restart. Clients pass it with --token-file or ACCELBENCH_TOKEN, over \
https:// only.\n\nExample:\n  accelbench token issue --name ci --role submitter --tokens-file \
/etc/accelbench/tokens.toml > ci.token")]
    Issue(TokenIssueArgs),
    /// Stop a token from working (by its holder's name)
    Revoke(TokenNameArgs),
    /// The tokens' holders, roles and dates (never the tokens)
    List(TokenFileArgs),
}

#[derive(Debug, Args)]
pub struct TokenFileArgs {
    /// The coordinator's tokens file
    #[arg(long, value_name = "FILE")]
    pub tokens_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct TokenIssueArgs {
    #[command(flatten)]
    pub file: TokenFileArgs,
    /// Who holds it (recorded as `submitted_by`)
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// admin, submitter or reader
    #[arg(long, value_name = "ROLE")]
    pub role: String,
}

#[derive(Debug, Args)]
pub struct TokenNameArgs {
    #[command(flatten)]
    pub file: TokenFileArgs,
    #[arg(long, value_name = "NAME")]
    pub name: String,
}

impl TokenCommand {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            TokenCommand::Issue(a) => {
                let token = issue_token(&a.file.tokens_file, &a.name, &a.role)?;
                println!("{token}");
                eprintln!(
                    "token for {} ({}) added to {}; shown only now",
                    a.name,
                    a.role,
                    a.file.tokens_file.display()
                );
            }
            TokenCommand::Revoke(a) => {
                let mut list = TokenList::load(&a.file.tokens_file)?;
                let before = list.tokens.len();
                list.tokens.retain(|t| t.name != a.name);
                if list.tokens.len() == before {
                    bail!("{}: no token for {}", a.file.tokens_file.display(), a.name);
                }
                save(&a.file.tokens_file, &list)?;
                println!("revoked the token of {}", a.name);
            }
            TokenCommand::List(a) => {
                for t in TokenList::load(&a.tokens_file)?.tokens {
                    println!("{}\t{}\t{}", t.name, t.role, t.created_at);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Adds a token for `name` to the file and returns it (the only time it exists).
pub fn issue_token(path: &Path, name: &str, role: &str) -> anyhow::Result<String> {
    let role: Role = role.parse().context("--role")?;
    if !role.is_user() {
        bail!("--role {role}: tokens are for admin, submitter or reader (agents and nodes use certificates)");
    }
    name.parse::<AgentId>().map_err(|e| anyhow::anyhow!("--name {name:?}: {e}"))?;
    let mut list = TokenList::load(path)?;
    if list.tokens.iter().any(|t| t.name == name) {
        bail!("{}: {name} has a token already (revoke it first)", path.display());
    }
    // 256 random bits from the OS generator (two v4 UUIDs' random parts and more).
    let token = format!("abt_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    list.tokens.push(TokenEntry {
        name: name.to_string(),
        role: role.to_string(),
        sha256: proto::identity::token_hash(&token),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    save(path, &list)?;
    Ok(token)
}

/// Replaces the tokens file whole (write, sync, rename): the coordinator never reads
/// half of one.
fn save(path: &Path, list: &TokenList) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let text = toml::to_string(list).context("encoding the tokens")?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::identity::CertIdentity;

    #[test]
    fn issued_certificates_name_their_holder_and_role() {
        let dir = tempfile::tempdir().expect("tempdir");
        init(dir.path(), 10).expect("ca");
        let e = init(dir.path(), 10).unwrap_err().to_string();
        assert!(e.contains("exists already"), "{e}");
        let (cert, key) = issue(dir.path(), "gpu-07", Role::Agent, &default_hosts("gpu-07"), 30).expect("issue");
        let id = CertIdentity::read_pem(&cert).expect("read back");
        assert_eq!((id.name.as_str(), id.role), ("gpu-07", Role::Agent));
        let left = id.seconds_left(chrono::Utc::now().timestamp());
        assert!((29 * 86_400..=30 * 86_400).contains(&left), "{left}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(key).expect("key").permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn tokens_are_printed_once_and_stored_hashed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.toml");
        let token = issue_token(&path, "ci", "submitter").expect("token");
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(!text.contains(&token) && text.contains(&proto::identity::token_hash(&token)), "{text}");
        assert!(issue_token(&path, "ci", "reader").unwrap_err().to_string().contains("has a token already"));
        assert!(issue_token(&path, "bot", "agent").unwrap_err().to_string().contains("certificates"));
        assert!(issue_token(&path, "a b", "reader").is_err());
    }
}
