//! The words of the review workflow as people see them: the replies to
//! whoever asked for a review, why a pull request was not reviewed, and
//! the titles and summaries of the `agentic review` check run, one function
//! each, grouped by when they are said. Pure functions, no I/O, so that
//! what is posted can be tested whole. A commit is passed in as it is
//! shown (its first seven characters).
//!
//! The review's own body and its annotations are built in `review.rs`
//! (`review_body`, `annotations`); the message to the model is not said
//! to people, so it is not here.

use crate::domain::ReviewState;

// The reply to whoever asked for the review.

/// The reply when the review of `head` was posted, naming the `check` run.
pub fn posted(head: &str, findings: usize, inline: usize, check: &str) -> String {
    format!(
        "Reviewed `{head}`: {findings} finding(s), {inline} of them as inline comments. The review and the **{check}** check run have the details."
    )
}

/// The reply when there was nothing to review, or the review was skipped.
pub fn no_review(why: &str) -> String {
    format!("No review: {why}.")
}

/// The reply when a newer review took this one's place.
pub fn replaced() -> &'static str {
    "A newer review of this pull request replaced this one."
}

/// The reply when the review could not be completed, and why.
pub fn not_completed(why: &str) -> String {
    format!("❌ The review could not be completed: {why}.")
}

/// The reply when `/agentic cancel` stopped the review.
pub fn stopped(by: &str) -> String {
    format!("🛑 Stopped: @{by} cancelled this review; nothing was posted.")
}

// Why a pull request is not reviewed, or not again: said in the reply, on
// the check run where there is one, and stored with the run.

/// The pull request is closed or merged.
pub fn not_open() -> &'static str {
    "the pull request is not open"
}

/// The event is about a head that is no longer the pull request's.
pub fn newer_commit() -> &'static str {
    "a newer commit was pushed since this event; its own event reviews it"
}

/// The repository turned automatic reviews off.
pub fn auto_off() -> &'static str {
    "`review.auto` is off in this repository's `.github/agentic.yml`"
}

/// A draft, where the repository does not review drafts.
pub fn draft() -> &'static str {
    "the pull request is a draft (`review.drafts` is off)"
}

/// A bot's pull request, where the repository does not review those.
pub fn opened_by_bot() -> &'static str {
    "the pull request was opened by a bot (`review.bots` is off)"
}

/// A retried job whose run had already ended, as `state`.
pub fn already_ended(state: ReviewState) -> String {
    format!("this run already ended ({state})")
}

/// A push of a head that was reviewed already.
pub fn already_reviewed(head: &str) -> String {
    format!("commit `{head}` was already reviewed")
}

/// A push whose files' changes are all as reviewed at `base`.
pub fn unchanged_since(base: &str) -> String {
    format!("no file's changes differ from those reviewed at `{base}`")
}

/// Every changed file was left out (ignored, deleted, too large…).
pub fn nothing_reviewable() -> &'static str {
    "no changed file could be reviewed"
}

/// The head moved from `from` to `to` while the files were read.
pub fn head_moved(from: &str, to: &str) -> String {
    format!(
        "the head moved from `{from}` to `{to}` while its files were read; the new head's own review covers it"
    )
}

/// A run that `/agentic cancel` stopped, as stored with it.
pub fn cancelled_by(by: &str) -> String {
    format!("cancelled by @{by}")
}

// Why the model gave no review: said on the failed check run.

/// The model answered in words instead of handing in a review.
pub fn answered_in_text() -> &'static str {
    "the model answered in text instead of handing in a review with submit_review"
}

/// The conversation stopped before its end, and why.
pub fn model_stopped(reason: &str) -> String {
    format!("the model stopped because {reason}")
}

/// The model did not answer, with its error `e`.
pub fn model_did_not_answer(e: &str) -> String {
    format!("the model did not answer ({e})")
}

// Notes said with the review.

/// A push after a review (of `last`) that did not record its files: a full review.
pub fn full_review_note(last: &str) -> String {
    format!("The last review (of `{last}`) did not record what it saw, so this is a full review.")
}

/// A push reviewed from `base`: only the files changed since, at `head`.
pub fn incremental_note(files: usize, base: &str, head: &str) -> String {
    format!(
        "Incremental review: the {files} file(s) whose changes differ from those reviewed at `{base}`, or are new, at `{head}`."
    )
}

// The check run while reviewing.

/// The check run's title while the review runs.
pub fn reviewing_title() -> &'static str {
    "Reviewing…"
}

/// The check run's summary when it starts: `files` files at `head`.
pub fn reviewing(files: usize, head: &str) -> String {
    format!("Reviewing {files} changed file(s) of `{head}`.")
}

/// The check run's summary as the model goes: the step it is on.
pub fn reviewing_step(files: usize, step: &str) -> String {
    format!("Reviewing {files} file(s); {step}.")
}

/// The check run's summary when the model did not answer and the job tries again.
pub fn retrying(e: &str) -> String {
    format!("The model did not answer ({e}); trying again shortly.")
}

// The check run of a head that is not reviewed.

/// The title of a check run skipped by the repository's settings.
pub fn skipped_title() -> &'static str {
    "Skipped"
}

/// Its summary: why, and how to review it anyway.
pub fn skipped(why: &str) -> String {
    format!("Not reviewed: {why}. `/agentic review` reviews it anyway.")
}

/// The title of a check run whose head changes nothing since the last review.
pub fn unchanged_title(total: u64) -> String {
    format!("No new changes ({total} finding(s) carried over)")
}

/// Its summary: why, and that the last conclusion stands.
pub fn unchanged(why: &str) -> String {
    format!("Not reviewed again: {why}. The last review's conclusion carries over.")
}

// The check run when the review ends.

/// The title of a posted review's check run, by its findings.
pub fn findings_title(findings: u64) -> String {
    match findings {
        0 => "No findings".to_string(),
        n => format!("{n} finding(s)"),
    }
}

/// The summary of a posted review's check run completed after a restart.
pub fn posted_before_restart() -> &'static str {
    "The review was posted; its findings are in the pull request's review."
}

/// The title of a check run with nothing to review.
pub fn nothing_to_review_title() -> &'static str {
    "Nothing to review"
}

/// Its summary: why, then what was left out.
pub fn nothing_to_review(why: &str, omissions: &str) -> String {
    format!("Nothing to review: {why}.\n\n{omissions}")
}

/// The title of a check run stopped by `/agentic cancel`.
pub fn cancelled_title() -> &'static str {
    "Cancelled"
}

/// Its summary: who stopped it, and how to review again.
pub fn cancelled(by: &str) -> String {
    format!(
        "@{by} stopped this review with `/agentic cancel`; nothing was posted. Use **Re-run review** to review again."
    )
}

/// The title of a check run a newer review replaced.
pub fn superseded_title() -> &'static str {
    "Superseded"
}

/// Its summary: the newer review's head.
pub fn superseded(newer_head: &str) -> String {
    format!("A newer review (of `{newer_head}`) replaced this one.")
}

/// The label of the button on a completed check run.
pub fn rerun_label() -> &'static str {
    "Re-run review"
}

/// What the button does.
pub fn rerun_description() -> &'static str {
    "Review the whole pull request again"
}

// The check run when the review failed.

/// The title of a check run whose review failed.
pub fn failed_title() -> &'static str {
    "Review failed"
}

/// Its summary: why, the job to look up, and how to try again.
pub fn failed(reason: &str, job: i64, delivery: &str) -> String {
    format!(
        "The review could not be completed: {reason}.\n\nReference: `job {job} of delivery {delivery}`. Use **Re-run review** to try again."
    )
}

// On the pull request.

/// The comment on what is wrong with the settings, with its hidden `mark`.
pub fn config_problem(problem: &str, mark: &str) -> String {
    format!("⚠️ {problem}.\n\n{mark}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_after_another(messages: &[String]) -> String {
        messages.join("\n---\n")
    }

    #[test]
    fn the_replies_and_reasons_read_as_this() {
        let text = one_after_another(&[
            posted("3fa1c9e", 3, 2, "agentic review"),
            no_review(not_open()),
            no_review(newer_commit()),
            no_review(auto_off()),
            no_review(draft()),
            no_review(opened_by_bot()),
            no_review(&already_ended(ReviewState::Done)),
            no_review(&already_reviewed("3fa1c9e")),
            no_review(&unchanged_since("0b1d2e3")),
            no_review(nothing_reviewable()),
            replaced().to_string(),
            head_moved("3fa1c9e", "7c8d9e0"),
            not_completed(answered_in_text()),
            not_completed(&model_stopped("it used its budget of 200000 tokens")),
            not_completed(&model_did_not_answer("timed out")),
            stopped("mia-maintainer"),
            cancelled_by("mia-maintainer"),
            full_review_note("0b1d2e3"),
            incremental_note(2, "0b1d2e3", "3fa1c9e"),
        ]);
        insta::assert_snapshot!(text);
    }

    /// A check run's title, then its summary.
    fn check_run(title: &str, summary: &str) -> String {
        format!("{title}\n{summary}")
    }

    #[test]
    fn the_check_run_reads_as_this() {
        let omissions = "**Not reviewed (2 file(s))**\n\n- `Cargo.lock`: matches `review.ignore`\n- `logo.png`: GitHub sent no diff for it (binary, or too large)";
        let model_failed = model_did_not_answer("timed out");
        let text = one_after_another(&[
            check_run(reviewing_title(), &reviewing(4, "3fa1c9e")),
            check_run(reviewing_title(), &reviewing_step(4, "reading src/main.rs")),
            check_run(reviewing_title(), &retrying("timed out")),
            check_run(skipped_title(), &skipped(draft())),
            check_run(&unchanged_title(2), &unchanged(&unchanged_since("0b1d2e3"))),
            check_run(&findings_title(0), posted_before_restart()),
            findings_title(3),
            check_run(
                nothing_to_review_title(),
                &nothing_to_review(nothing_reviewable(), omissions),
            ),
            check_run(cancelled_title(), &cancelled("mia-maintainer")),
            check_run(superseded_title(), &superseded("7c8d9e0")),
            check_run(rerun_label(), rerun_description()),
            check_run(failed_title(), &failed(&model_failed, 42, "d-1")),
            config_problem(
                "`.github/agentic.yml` does not parse: unknown field `reveiw`; the defaults apply",
                "<!-- agentic:config-problem=0123456789abcdef -->",
            ),
        ]);
        insta::assert_snapshot!(text);
    }
}
