//! Certificates made in the test (rcgen): a client CA, a server certificate
//! for 127.0.0.1 and localhost, client certificates of every kind the TLS
//! listener must tell apart, and a CRL; written as PEM files for
//! `TESSERA_TLS_*`, and as reqwest identities.

use std::path::{Path, PathBuf};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};

/// A CA: its certificate (PEM) and what signs with it.
pub struct Ca {
    pub issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate signed by this CA.
    pub fn issue(&self, spec: Leaf) -> Issued {
        let mut params = CertificateParams::new(spec.sans).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = spec.cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.extended_key_usages = spec.usages;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(SerialNumber::from(spec.serial));
        if spec.expired {
            params.not_before = date_time_ymd(2001, 1, 1);
            params.not_after = date_time_ymd(2002, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: spec.serial,
        }
    }

    /// A CRL of this CA revoking `serials`: (PEM, DER).
    pub fn crl(&self, serials: &[u64]) -> (String, Vec<u8>) {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: date_time_ymd(2024, 1, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).unwrap();
        (crl.pem().unwrap(), crl.der().to_vec())
    }
}

/// What to put in a certificate.
pub struct Leaf {
    pub cn: Option<&'static str>,
    pub sans: Vec<String>,
    pub usages: Vec<ExtendedKeyUsagePurpose>,
    pub serial: u64,
    pub expired: bool,
}

impl Leaf {
    /// A client certificate with `clientAuth`.
    pub fn client(cn: &'static str, serial: u64) -> Self {
        Self {
            cn: Some(cn),
            sans: Vec::new(),
            usages: vec![ExtendedKeyUsagePurpose::ClientAuth],
            serial,
            expired: false,
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server() -> Self {
        Self {
            cn: Some("tessera test server"),
            sans: vec!["127.0.0.1".into(), "localhost".into()],
            usages: vec![ExtendedKeyUsagePurpose::ServerAuth],
            serial: 1,
            expired: false,
        }
    }
}

/// A certificate and its key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: u64,
}

impl Issued {
    /// The client identity reqwest presents.
    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert_pem, self.key_pem).as_bytes())
            .unwrap()
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A client that trusts only `ca_pem` (the server's CA), with `identity`
/// if given; one connection per request.
pub fn https_client(ca_pem: &str, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(0);
    if let Some(id) = identity {
        b = b.identity(id);
    }
    b.build().unwrap()
}
