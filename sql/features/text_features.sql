-- Cheap text features of each instance's question, the same columns the simulator fills in
-- `instances`. Reads `instance_text` (instance_id, text); a null text gives null features.
-- Needs count_tokens(text) (toolkit.tokens.register_token_counter: the study's tokenizer).
--   prompt_tokens     count_tokens(text)
--   n_sentences       runs of . ! ? followed by whitespace or the end, at least 1 if any text
--   n_digits          digit characters
--   n_math_symbols    + - * / = < > ^ and their Unicode forms (× ÷ ± ≤ ≥ ≠ −)
--   n_latex           LaTeX commands: a backslash and letters (\frac, \sqrt, \le, ...)
--   n_question_words  whole words, any case: what how find compute determine calculate
--                     evaluate which why when where who whose simplify solve prove show express
with texts as (
    select instance_id, text from instance_text
),

counted as (
    select
        instance_id,
        text,
        count_tokens(text) as prompt_tokens,
        len(regexp_extract_all(text, '[.!?]+(\s|$)')) as sentence_ends,
        len(regexp_extract_all(text, '[0-9]')) as n_digits,
        len(regexp_extract_all(text, '[-+*/=<>^×÷±≤≥≠−]')) as n_math_symbols,
        len(regexp_extract_all(text, '\\[A-Za-z]+')) as n_latex,
        len(regexp_extract_all(
            lower(text),
            '\b(what|how|find|compute|determine|calculate|evaluate|which|why|when|where|who|whose|simplify|solve|prove|show|express)\b'
        )) as n_question_words
    from texts
),

final as (
    select
        instance_id,
        prompt_tokens::integer as prompt_tokens,
        case
            when text is null then null
            when trim(text) = '' then 0
            else greatest(sentence_ends, 1)
        end::integer as n_sentences,
        n_digits::integer as n_digits,
        n_math_symbols::integer as n_math_symbols,
        n_latex::integer as n_latex,
        n_question_words::integer as n_question_words
    from counted
)

select * from final
