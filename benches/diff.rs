//! Patch parsing and line validation on a real diff of 4,863 lines
//! (`fixtures/diffs/pip-23.2.1-to-26.3.diff`: six files, 3,900 lines of
//! them one file's change). Our own work per review should be a few
//! milliseconds, negligible next to the model.

use agentic::diff::{split_git_diff, Patch, Side};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn diff_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/diffs/pip-23.2.1-to-26.3.diff"
    ))
    .expect("the fixture exists")
}

fn parse_and_validate(c: &mut Criterion) {
    let files = split_git_diff(&diff_text());
    let patches: Vec<&str> = files.iter().filter_map(|f| f.patch.as_deref()).collect();
    c.bench_function("parse 4,863-line diff", |b| {
        b.iter(|| {
            for p in &patches {
                black_box(Patch::parse(black_box(p)).unwrap());
            }
        })
    });
    let parsed: Vec<Patch> = patches.iter().map(|p| Patch::parse(p).unwrap()).collect();
    let lines: Vec<Vec<u32>> = parsed.iter().map(|p| p.right_lines()).collect();
    c.bench_function("validate every commentable line and a miss", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for (patch, lines) in parsed.iter().zip(&lines) {
                for n in lines {
                    ok +=
                        usize::from(patch.can_comment(Side::Right, Some(n.saturating_sub(2)), *n));
                    ok += usize::from(patch.can_comment(Side::Right, None, n + 100_000));
                }
            }
            black_box(ok)
        })
    });
}

criterion_group!(benches, parse_and_validate);
criterion_main!(benches);
