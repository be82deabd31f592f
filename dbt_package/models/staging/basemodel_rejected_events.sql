{#- Every source row that is not a staged event, with the reason. Without
    basemodel_incremental both models read the same classification
    (basemodel.parsed_events, whose choice among duplicates is total), so they
    split the rows the same way. With it, the staged events accumulate over
    runs, so the rejected rows are the source rows whose source_row_id is not
    staged: a valid copy of a staged event is a duplicate, any other valid row
    was not read by an incremental run in time (late_event). Either way every
    source row is in exactly one of the two (tests/basemodel_events_reconcile.sql). -#}
{%- set s = basemodel.settings() %}

with parsed as (
    {{ basemodel.parsed_events() }}
),

{%- if s.incremental %}

staged_rows as (
    select source_row_id from {{ ref('basemodel_stg_events') }}
),

staged_events as (
    select distinct event_id from {{ ref('basemodel_stg_events') }}
),

{#- Joins rather than EXISTS in the select list, which Spark does not allow. #}
classified as (
    select
        parsed.*,
        coalesce(
            parsed.invalid_reason,
            case when staged_events.event_id is not null then 'duplicate' else 'late_event' end
        ) as final_reason
    from parsed
    left join staged_rows
        on staged_rows.source_row_id = parsed.source_row_id
    left join staged_events
        on staged_events.event_id = parsed.event_id
    where staged_rows.source_row_id is null
)
{%- else %}

classified as (
    select *, rejection_reason as final_reason
    from parsed
    where rejection_reason is not null
)
{%- endif %}

select
    source_row_id,
    final_reason as rejection_reason,
    case when final_reason = 'duplicate' then event_id end as duplicate_of_event_id,
    raw_entity,
    raw_timestamp,
    raw_event_type,
    {%- for item in s.item_columns %}
    {{ item.name }},
    {%- endfor %}
    group_id,
    raw_amount,
    loaded_at
    {%- for column in s.passthrough_columns %},
    {{ column }}
    {%- endfor %}
from classified
