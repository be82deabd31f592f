{#- Every source row that is not a staged event, with the reason. Together
    with basemodel_stg_events it accounts for every source row exactly once
    (tests/basemodel_events_reconcile.sql). -#}
{%- set s = basemodel.settings() %}

with parsed as (
    {{ basemodel.parsed_events() }}
)

select
    rejection_reason,
    case when rejection_reason = 'duplicate' then event_id end as duplicate_of_event_id,
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
from parsed
where rejection_reason is not null
