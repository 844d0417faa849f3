//! TLS helpers for the end-to-end tests: a certificate authority and node certificates made in
//! the test's temporary directory (never committed: they would expire), and `curl` over HTTPS.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A certificate authority whose certificate is `ca.pem` in its directory.
pub struct Ca {
    pub dir: PathBuf,
    pub name: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pair {
    /// The flags a node serves this pair with.
    pub fn flags(&self) -> [String; 4] {
        ["--tls-cert".into(), self.cert.to_str().unwrap().into(), "--tls-key".into(), self.key.to_str().unwrap().into()]
    }
}

impl Ca {
    /// A new CA named `name`, its certificate written to `dir/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, format!("dftp test CA {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}-ca.pem")), cert.pem()).unwrap();
        Ca { dir: dir.to_owned(), name: name.to_owned(), issuer: Issuer::new(params, key) }
    }

    /// The CA's certificate file (for `--tls-ca` and `curl --cacert`).
    pub fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// A server certificate for 127.0.0.1 and localhost, signed by this CA, written as
    /// `<file>.pem` and `<file>.key` (replacing earlier ones of that name).
    pub fn issue(&self, file: &str) -> Pair {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
        params.distinguished_name.push(DnType::CommonName, format!("dftp test {file}"));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pair = Pair { cert: self.dir.join(format!("{file}.pem")), key: self.dir.join(format!("{file}.key")) };
        std::fs::write(&pair.cert, cert.pem()).unwrap();
        std::fs::write(&pair.key, key.serialize_pem()).unwrap();
        pair
    }
}

/// The status of a GET of `url` over HTTPS without checking the certificate (`curl -k`), or
/// `None` when there was no answer. For waiting until a node serves.
pub fn insecure_status(url: &str) -> Option<u16> {
    let out =
        Command::new("curl").args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", url]).output();
    let code: u16 = String::from_utf8_lossy(&out.ok()?.stdout).trim().parse().ok()?;
    (code != 0).then_some(code)
}

/// Runs curl with `args`, trusting only `ca`; returns its exit status, stdout and stderr.
pub fn curl(ca: &Path, args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .expect("curl runs");
    (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}
