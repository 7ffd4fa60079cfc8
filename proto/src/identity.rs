//! Who is calling: the roles of the lab's principals and how a certificate names one.
//!
//! A certificate issued by `accelbench ca issue` names its holder in the subject's
//! common name (CN) and its role in the organisational unit (OU), e.g. `CN=gpu-box-07,
//! OU=agent`. The TLS layer has already checked the chain against the lab CA before
//! anything here reads a certificate: this module only reads what a valid one says.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;

/// What a principal may do (docs/SECURITY.md has the table of RPCs per role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything a submitter may, plus removing agents and cancelling anyone's sweep.
    Admin,
    /// Submit sweeps and cancel their own; read everything a reader may.
    Submitter,
    /// Sweep status, watch, agents, metrics: read-only.
    Reader,
    /// A lab machine running `accelbench-agent`: the agent service only, in its own name.
    Agent,
    /// A coordinator node (the Raft peer service, and the server certificate).
    Node,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Submitter, Role::Reader, Role::Agent, Role::Node];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Submitter => "submitter",
            Role::Reader => "reader",
            Role::Agent => "agent",
            Role::Node => "node",
        }
    }

    /// The roles of people and scripts (what `--user NAME --role ROLE` and tokens take).
    pub fn is_user(self) -> bool {
        matches!(self, Role::Admin | Role::Submitter | Role::Reader)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| anyhow::anyhow!("unknown role `{s}` (admin, submitter, reader, agent, node)"))
    }
}

/// What a certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// The subject's common name: an agent id, a node or a user name.
    pub name: String,
    pub role: Role,
    /// Unix seconds after which the certificate is no longer valid.
    pub not_after: i64,
}

impl CertIdentity {
    /// Reads the subject of a DER certificate; an error names what is missing.
    pub fn from_der(der: &[u8]) -> anyhow::Result<CertIdentity> {
        let s = CertSubject::from_der(der)?;
        let role = s.role.context("the certificate's subject has no organisational unit (its role)")?;
        Ok(CertIdentity { name: s.name, role: role.parse()?, not_after: s.not_after })
    }

    /// The first certificate of a PEM file (a leaf comes first in a chain file).
    pub fn read_pem(path: &Path) -> anyhow::Result<CertIdentity> {
        CertIdentity::from_der(&first_pem(path)?).with_context(|| path.display().to_string())
    }

    /// Seconds left before expiry at `now` (negative once expired).
    pub fn seconds_left(&self, now: i64) -> i64 {
        self.not_after.saturating_sub(now)
    }
}

/// Any certificate's subject name and expiry (a CA's has no role): what the doctors show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSubject {
    pub name: String,
    /// The organisational unit, when there is one.
    pub role: Option<String>,
    pub not_after: i64,
}

impl CertSubject {
    pub fn from_der(der: &[u8]) -> anyhow::Result<CertSubject> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| anyhow::anyhow!("not a certificate: {e}"))?;
        let subject = cert.subject();
        let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
            it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
        };
        let name = first(&mut subject.iter_common_name()).context("the certificate's subject has no common name")?;
        let role = first(&mut subject.iter_organizational_unit());
        Ok(CertSubject { name, role, not_after: cert.validity().not_after.timestamp() })
    }

    pub fn read_pem(path: &Path) -> anyhow::Result<CertSubject> {
        CertSubject::from_der(&first_pem(path)?).with_context(|| path.display().to_string())
    }
}

fn first_pem(path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", path.display()))?;
    Ok(pem.contents)
}

/// The hash a bearer token is stored and looked up by: tokens themselves are never
/// written anywhere but the holder's own file.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_ones_are_named() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().expect("known role"), r);
        }
        let e = "root".parse::<Role>().unwrap_err().to_string();
        assert!(e.contains("`root`") && e.contains("submitter"), "{e}");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let e = CertIdentity::from_der(b"\x30\x03\x02\x01").unwrap_err().to_string();
        assert!(e.contains("not a certificate"), "{e}");
    }

    #[test]
    fn token_hashes_are_sha256_hex() {
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
