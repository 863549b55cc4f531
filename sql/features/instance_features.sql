-- instance_features: the cheap input features of every instance, one row per run and instance,
-- as `toolkit.features.instance_features` builds them (this file is its test oracle, written
-- for the default two declared difficulty signals; the Ibis query adds one signal_k column per
-- declared signal). `instances.difficulty` is the simulator's latent truth: never a feature.
--
-- Columns (besides run_id, instance_id):
--   dataset, subject                  categorical
--   level                             MATH level 1..5; GSM8K-like: reasoning steps
--   prompt_tokens                      length
--   n_sentences, tokens_per_sentence
--   n_digits, digits_per_token
--   n_math_symbols, math_symbols_per_token
--   n_latex, latex_per_token
--   n_question_words, question_words_per_sentence
--   signal_1, signal_2, signal_mean   the declared noisy difficulty signals and their mean
-- (The probe's features, of runs with a probe, come from the probes table.)
-- Ratios with a zero or null denominator are null.
with

instance_rows as (
    select * from instances
),

final as (
    select
        run_id,
        instance_id,
        dataset::varchar as dataset,
        subject::varchar as subject,
        level::double as level,
        prompt_tokens::double as prompt_tokens,
        n_sentences::double as n_sentences,
        prompt_tokens::double / nullif(n_sentences::double, 0.0) as tokens_per_sentence,
        n_digits::double as n_digits,
        n_digits::double / nullif(prompt_tokens::double, 0.0) as digits_per_token,
        n_math_symbols::double as n_math_symbols,
        n_math_symbols::double / nullif(prompt_tokens::double, 0.0) as math_symbols_per_token,
        n_latex::double as n_latex,
        n_latex::double / nullif(prompt_tokens::double, 0.0) as latex_per_token,
        n_question_words::double as n_question_words,
        n_question_words::double / nullif(n_sentences::double, 0.0)
            as question_words_per_sentence,
        difficulty_signals[1] as signal_1,
        difficulty_signals[2] as signal_2,
        list_avg(difficulty_signals) as signal_mean
    from instance_rows
)

select * from final
