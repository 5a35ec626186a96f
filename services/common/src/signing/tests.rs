use std::sync::Arc;

use openssl::pkey::{PKey, Public};

use super::testing::SoftHsm;
use super::*;

const ALGORITHMS: [KeyAlgorithm; 4] = [
    KeyAlgorithm::Rsa { bits: 2048 },
    KeyAlgorithm::Rsa { bits: 3072 },
    KeyAlgorithm::EcP256,
    KeyAlgorithm::EcP384,
];

fn verifies(
    public: &PKey<Public>,
    algorithm: KeyAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let mut verifier = openssl::sign::Verifier::new(algorithm.digest(), public).expect("verifier");
    verifier.update(message).expect("update");
    verifier.verify(signature).unwrap_or(false)
}

fn in_memory(algorithm: KeyAlgorithm) -> InMemoryKey {
    let key = match algorithm {
        KeyAlgorithm::Rsa { bits } => {
            PKey::from_rsa(openssl::rsa::Rsa::generate(bits).expect("rsa")).expect("key")
        }
        KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
            let nid = if algorithm == KeyAlgorithm::EcP256 {
                openssl::nid::Nid::X9_62_PRIME256V1
            } else {
                openssl::nid::Nid::SECP384R1
            };
            let group = openssl::ec::EcGroup::from_curve_name(nid).expect("group");
            PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec")).expect("key")
        }
    };
    InMemoryKey::new(key, "test key").expect("supported")
}

/// A JWT signed by `key` verifies with its public key through the token library.
fn jwt_verifies(key: &dyn PrivateKey) {
    let algorithm = key.algorithm().jws_algorithm();
    let mut header = jsonwebtoken::Header::new(algorithm);
    header.kid = Some("kid-1".into());
    let claims = serde_json::json!({"sub": "acme", "exp": 4_000_000_000u64});
    let token = sign_jwt(key, &header, &claims).expect("signed");
    let pem = key.public_key().public_key_to_pem().expect("pem");
    let decoding = match algorithm {
        jsonwebtoken::Algorithm::RS256 => jsonwebtoken::DecodingKey::from_rsa_pem(&pem),
        _ => jsonwebtoken::DecodingKey::from_ec_pem(&pem),
    }
    .expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.required_spec_claims.clear();
    let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
        .expect("the token library accepts the signature");
    assert_eq!(decoded.claims["sub"], "acme");
    assert_eq!(decoded.header.kid.as_deref(), Some("kid-1"));
}

#[test]
fn in_memory_keys_sign_with_their_digest_and_as_jws() {
    for algorithm in ALGORITHMS {
        let key = in_memory(algorithm);
        let signature = key.sign(b"message").expect("signed");
        assert!(
            verifies(key.public_key(), algorithm, b"message", &signature),
            "{algorithm:?}"
        );
        assert!(
            !verifies(key.public_key(), algorithm, b"other", &signature),
            "{algorithm:?}"
        );
        jwt_verifies(&key);
    }
}

#[test]
fn weak_or_exotic_keys_are_refused() {
    let small = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).expect("rsa")).expect("key");
    assert!(matches!(
        InMemoryKey::new(small, "small"),
        Err(SigningError::Unsupported(_))
    ));
    let edwards = PKey::generate_ed25519().expect("ed25519");
    assert!(matches!(
        InMemoryKey::new(edwards, "ed"),
        Err(SigningError::Unsupported(_))
    ));
    assert!(matches!(
        InMemoryKey::from_pem(b"garbage", "the file"),
        Err(SigningError::Configuration(message)) if message.contains("the file")
    ));
}

#[test]
fn keys_generated_in_softhsm_sign_there_and_verify_outside() {
    let hsm = SoftHsm::start().expect("SoftHSM token");
    for algorithm in ALGORITHMS {
        let label = format!("key-{algorithm:?}");
        let generated = hsm.generate(&label, algorithm).expect("generated");
        let key = Pkcs11Key::open(&hsm.settings, &label).expect("opened");
        assert!(key.public_key().public_eq(&generated), "{algorithm:?}");
        assert_eq!(key.algorithm(), algorithm);
        assert!(
            key.in_memory().is_none(),
            "the private key stays in the token"
        );
        let signature = key.sign(b"to be signed").expect("signed");
        assert!(
            verifies(key.public_key(), algorithm, b"to be signed", &signature),
            "{algorithm:?}"
        );
        jwt_verifies(&key);
    }
}

#[test]
fn one_hsm_key_signs_from_many_threads() {
    let hsm = SoftHsm::start().expect("SoftHSM token");
    hsm.generate("shared", KeyAlgorithm::EcP256)
        .expect("generated");
    let key = Arc::new(Pkcs11Key::open(&hsm.settings, "shared").expect("opened"));
    let threads: Vec<_> = (0..8)
        .map(|index| {
            let key = Arc::clone(&key);
            std::thread::spawn(move || {
                for round in 0..20 {
                    let message = format!("{index}-{round}");
                    let signature = key.sign(message.as_bytes()).expect("signed");
                    assert!(verifies(
                        key.public_key(),
                        KeyAlgorithm::EcP256,
                        message.as_bytes(),
                        &signature
                    ));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
}

#[test]
fn a_wrong_pin_is_refused_without_being_repeated() {
    let hsm = SoftHsm::start().expect("SoftHSM token");
    hsm.generate("key", KeyAlgorithm::EcP256)
        .expect("generated");
    let wrong = hsm.with_wrong_pin().expect("wrong PIN file");
    let error = Pkcs11Key::open(&wrong, "key").expect_err("wrong PIN");
    assert!(matches!(error, SigningError::Configuration(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("PIN"), "{message}");
    assert!(
        !message.contains("not-the-pin"),
        "the PIN is never echoed: {message}"
    );
}

#[test]
fn missing_keys_tokens_and_modules_say_which() {
    let hsm = SoftHsm::start().expect("SoftHSM token");
    let error = Pkcs11Key::open(&hsm.settings, "absent").expect_err("no such key");
    assert!(
        matches!(&error, SigningError::Configuration(m) if m.contains("absent")),
        "{error:?}"
    );

    let other_token = HsmSettings {
        token_label: "no-such-token".into(),
        ..hsm.settings.clone()
    };
    let error = Pkcs11Key::open(&other_token, "absent").expect_err("no such token");
    assert!(
        matches!(&error, SigningError::Unavailable(m) if m.contains("no-such-token")),
        "{error:?}"
    );

    let no_module = HsmSettings {
        module: "/nonexistent/libpkcs11.so".into(),
        ..hsm.settings.clone()
    };
    let error = Pkcs11Key::open(&no_module, "absent").expect_err("no such module");
    assert!(
        matches!(&error, SigningError::Unavailable(m) if m.contains("/nonexistent")),
        "{error:?}"
    );

    hsm.generate("taken", KeyAlgorithm::EcP256)
        .expect("generated");
    let error = hsm
        .generate("taken", KeyAlgorithm::EcP256)
        .expect_err("label in use");
    assert!(matches!(error, SigningError::Configuration(_)), "{error:?}");
}

#[test]
fn hsm_settings_name_their_token_and_pin() {
    assert!(HsmSettings::default().validate().is_ok());
    let module_only = HsmSettings {
        module: "/usr/lib/softhsm/libsofthsm2.so".into(),
        ..Default::default()
    };
    assert!(
        module_only
            .validate()
            .expect_err("refused")
            .contains("token_label")
    );
    let no_pin = HsmSettings {
        token_label: "pmp".into(),
        ..module_only
    };
    assert!(no_pin.validate().expect_err("refused").contains("pin_file"));
}

#[test]
fn a_key_file_location_reads_only_a_bounded_regular_file() {
    let hsm = HsmSettings::default();
    for path in ["/dev/zero", "/", "/no/such/key.pem"] {
        let error = KeyLocation::File(path.into())
            .open(&hsm)
            .expect_err("not a key file");
        assert!(
            matches!(error, SigningError::Configuration(_)),
            "{path}: {error:?}"
        );
    }
    let directory = tempfile::tempdir().expect("tempdir");
    let key = directory.path().join("key.pem");
    let pem = in_memory(KeyAlgorithm::EcP256)
        .in_memory()
        .expect("in memory")
        .private_key_to_pem_pkcs8()
        .expect("pem");
    std::fs::write(&key, pem).expect("write");
    let opened = KeyLocation::File(key.display().to_string())
        .open(&hsm)
        .expect("a key file opens");
    assert_eq!(opened.algorithm(), KeyAlgorithm::EcP256);
    assert!(matches!(
        KeyLocation::Hsm("any".into()).open(&hsm),
        Err(SigningError::Configuration(_))
    ));
}
