-- The package's classification (basemodel.parsed_events, which both staging models read) of
-- the nasty rows, compared row by row with their expected outcome in _integrity.yml.
{{ config(materialized='table') }}
{{ basemodel.parsed_events(relation=ref('fuzz_raw_events')) }}
