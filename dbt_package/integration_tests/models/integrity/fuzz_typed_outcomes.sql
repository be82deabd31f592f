-- As fuzz_outcomes, for rows whose timestamp and amount columns are typed.
{{ config(materialized='table') }}
{{ basemodel.parsed_events(relation=ref('fuzz_typed_events')) }}
