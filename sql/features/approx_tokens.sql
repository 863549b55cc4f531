-- approx_tokens(value): an approximate BPE token count of a text, for prompt lengths and for
-- costs when an evaluation log stores no token counts. It counts
--   each run of letters (a word: common English words are one token in GPT-4's cl100k and
--     Llama 3's vocabularies; rare long words are several, so this undercounts them),
--   each group of up to 3 digits (both vocabularies split numbers into 1-3 digit pieces),
--   every other character that is not whitespace (punctuation, operators, LaTeX's \ { } $).
-- It is an approximation, not any model's tokenizer. A null text counts as null.
create or replace temp macro approx_tokens(value) as
    len(regexp_extract_all(value, '\p{L}+|\p{N}{1,3}|[^\s\p{L}\p{N}]'));
