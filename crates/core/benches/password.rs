//! The password policy's cost on its worst inputs: 128 code points of mixed
//! scripts, keyboard walks and look-alikes (zxcvbn's slowest), which a
//! client may send at will. Run: `cargo bench -p tessera-core --bench password`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tessera_core::password::{PasswordPolicy, PolicyContext};

fn policy(c: &mut Criterion) {
    let ctx = PolicyContext {
        email: Some("alice.smith@example.com"),
        display_name: Some("Alice Smith"),
        issuer: "tessera",
    };
    let policy = PasswordPolicy::default();
    let inputs: [(&str, String); 5] = [
        ("repeated_word", "password".repeat(16)),
        ("passphrase", "correct horse battery staple ".repeat(5)),
        ("mixed_scripts", "éàöüçñ漢字かな".repeat(13)),
        ("context_words", "alicesmithtessera".repeat(8)),
        // Distinct look-alikes: zxcvbn's slowest input.
        ("look_alikes", "4@8(3691!|05$7+2".repeat(8)),
    ];
    for (name, input) in inputs {
        let input: String = input.chars().take(128).collect();
        c.bench_function(&format!("password_policy/{name}"), |b| {
            b.iter(|| black_box(policy.check(black_box(&input), &ctx)))
        });
    }
}

criterion_group!(benches, policy);
criterion_main!(benches);
