//! Patch parsing, line validation and prompt assembly (with o200k_base
//! token counting) on a real diff of 4,863 lines
//! (`fixtures/diffs/pip-23.2.1-to-26.3.diff`: six files, 3,900 lines of
//! them one file's change), and since issue 15 the numbering of every
//! line and the placing of findings by the text they quote. Our own work
//! per review should be a few milliseconds, negligible next to the model.

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

fn assemble_prompt(c: &mut Criterion) {
    let files: Vec<agentic::review::ChangedFile> = split_git_diff(&diff_text())
        .into_iter()
        .map(|f| {
            let (additions, deletions) = f
                .patch
                .as_deref()
                .and_then(|p| Patch::parse(p).ok())
                .map_or((0, 0), |p| p.counts());
            agentic::review::ChangedFile {
                path: f.path,
                status: "modified".into(),
                previous_path: f.previous_path,
                additions: additions as u64,
                deletions: deletions as u64,
                patch: f.patch,
                sha: None,
            }
        })
        .collect();
    let ignore = agentic::repo_config::RepoConfig::default().ignored();
    let bpe = agentic::review::tokenizer("gpt-4o");
    let fence = agentic::agent::tools::Fence::new();
    // Warm the tokenizer once (its tables load on first use).
    black_box(bpe.count_ordinary("warm"));
    c.bench_function("assemble the prompt with token counting", |b| {
        b.iter(|| {
            black_box(agentic::review::assemble(
                black_box(&files),
                &ignore,
                24_000,
                bpe,
                &fence,
            ))
        })
    });
}

/// What issue 15 added per review: every line numbered for the model, and
/// findings placed by the text they quote — half exact, half with line
/// numbers off by three (the relocating path) — over the whole diff.
fn number_and_anchor(c: &mut Criterion) {
    let files = split_git_diff(&diff_text());
    let parsed: Vec<(String, Patch)> = files
        .iter()
        .filter_map(|f| Some((f.path.clone(), Patch::parse(f.patch.as_deref()?).ok()?)))
        .collect();
    c.bench_function("number every line of the 4,863-line diff", |b| {
        b.iter(|| {
            for (_, p) in &parsed {
                black_box(p.numbered());
            }
        })
    });
    // 25 findings a file, as a model would give at most.
    let mut findings = Vec::new();
    for (path, patch) in &parsed {
        for (i, (n, text)) in patch
            .lines_on(Side::Right)
            .into_iter()
            .step_by(7)
            .take(25)
            .enumerate()
        {
            findings.push(agentic::review::Finding {
                path: path.clone(),
                line: if i % 2 == 0 { n } else { n + 3 },
                start_line: None,
                side: Side::Right,
                anchor: text.to_string(),
                start_anchor: None,
                severity: agentic::domain::Severity::Major,
                body: format!("finding {i}"),
                suggestion: (i % 4 == 0).then(|| format!("+{text} // fixed")),
            });
        }
    }
    let patches: std::collections::HashMap<String, Patch> = parsed.into_iter().collect();
    let config = agentic::repo_config::ReviewConfig {
        max_comments: 1000,
        ..Default::default()
    };
    let posted = std::collections::HashSet::new();
    c.bench_function(
        &format!("place {} findings by anchor", findings.len()),
        |b| {
            b.iter(|| {
                black_box(agentic::review::plan(
                    black_box(findings.clone()),
                    &patches,
                    &config,
                    &posted,
                ))
            })
        },
    );
}

criterion_group!(
    benches,
    parse_and_validate,
    assemble_prompt,
    number_and_anchor
);
criterion_main!(benches);
