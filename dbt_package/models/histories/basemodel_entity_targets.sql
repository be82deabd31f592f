{#- One row per row of basemodel_entity_history: what the entity did in
    (split_at, split_at + horizon]. Labels are 0/1 integers; an entity
    without future events has churned = 1, empty lists and zero spend.
    Churn is labelled for the churn population only: customers with an event
    at most basemodel_active_days (default 90) days before the cut-off
    (in_churn_population = 1); the others, gone long ago, have churned NULL,
    so a model trained on the label never learns that dormant customers stay
    dormant. -#}
{%- set s = basemodel.settings() -%}
{%- set string = dbt.type_string() -%}
{%- set aggregates = [['n_future_events', 'count(*)']] -%}
{%- if s.amount_column -%}
  {%- do aggregates.append(['future_spend', 'coalesce(sum(amount), 0)']) -%}
{%- endif -%}
{%- for label in s.propensity_labels -%}
  {%- if label.event_type is not none -%}
    {%- set condition = "event_type = '" ~ dbt.escape_single_quotes(label.event_type) ~ "'" -%}
  {%- else -%}
    {%- set condition = label.item ~ " = '" ~ dbt.escape_single_quotes(label.value) ~ "'" -%}
    {%- if s.propensity_item_event_types -%}
      {%- set types = [] -%}
      {%- for t in s.propensity_item_event_types -%}{%- do types.append("'" ~ dbt.escape_single_quotes(t) ~ "'") -%}{%- endfor -%}
      {%- set condition = condition ~ " and event_type in (" ~ types | join(', ') ~ ")" -%}
    {%- endif -%}
  {%- endif -%}
  {%- do aggregates.append([label.column, 'max(case when ' ~ condition ~ ' then 1 else 0 end)']) -%}
{%- endfor -%}
{%- set lists = [['future_event_types', 'event_type']] -%}
{%- for item in s.item_columns -%}
  {%- do lists.append(['future_' ~ item.name ~ '_items', item.name]) -%}
{%- endfor %}

with future_events as (
    select
        splits.split_at,
        events.*
    from {{ ref('basemodel_stg_events') }} as events
    inner join {{ ref('basemodel_splits') }} as splits
        on events.event_at > splits.split_at
        and events.event_at <= splits.horizon_end_at
),

future as (
    {{ basemodel.grouped_lists(
        relation='future_events',
        group_by=['split_at', 'entity_id'],
        order_by=['event_at', 'event_id'],
        aggregates=aggregates,
        lists=lists,
    ) | indent(4) }}
)

select
    history.split_id,
    history.split_at,
    splits.horizon_end_at,
    splits.is_horizon_complete,
    history.entity_id,
    coalesce(future.n_future_events, 0) as n_future_events,
    {%- if s.active_days is none %}
    1 as in_churn_population,
    case when future.n_future_events is null then 1 else 0 end as churned,
    {%- else %}
    case when history.days_since_last_event <= {{ s.active_days }} then 1 else 0 end as in_churn_population,
    case when history.days_since_last_event <= {{ s.active_days }}
         then case when future.n_future_events is null then 1 else 0 end end as churned,
    {%- endif %}
    {%- for label in s.propensity_labels %}
    coalesce(future.{{ label.column }}, 0) as {{ label.column }},
    {%- endfor %}
    {%- if s.amount_column %}
    coalesce(future.future_spend, 0) as future_spend,
    {%- else %}
    cast(null as {{ basemodel.type_double() }}) as future_spend,
    {%- endif %}
    {%- for name, expression in lists %}
    coalesce(future.{{ name }}, {{ basemodel.make_list([], string) }}) as {{ name }}{{ ',' if not loop.last }}
    {%- endfor %}
from {{ ref('basemodel_entity_history') }} as history
inner join {{ ref('basemodel_splits') }} as splits
    on history.split_at = splits.split_at
left join future
    on future.split_at = history.split_at
    and future.entity_id = history.entity_id
