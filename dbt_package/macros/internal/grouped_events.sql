{#-
  The staged events with the group each belongs to, as the hyperedges and
  histories see it: a select of event_id, entity_id, event_at, event_type,
  the item columns, amount and group_id from `relation`.

  Without basemodel_session_gap_minutes group_id is the staged one (the
  basemodel_group_column value, or the entity). With it, the events of one
  customer (within one group, when there is a group column) form sessions:
  an event more than that many minutes after the previous one starts a new
  session, and group_id becomes '<group>@<time of the session's first
  event>'. Events are ordered by (event_at, event_id), so sessions are the
  same in every build; a NULL group stays NULL (no hyperedge).
-#}
{% macro grouped_events(relation) %}
  {%- set s = basemodel.settings() -%}
  {%- set columns = ['event_id', 'entity_id', 'event_at', 'event_type'] + (s.item_columns | map(attribute='name') | list) + ['amount'] -%}
  {%- if s.session_gap_minutes is none %}
select {{ columns | join(', ') }}, group_id
from {{ relation }}
  {%- else %}
  {%- set ordered = 'partition by entity_id, group_id order by event_at, event_id' %}
  {#- The gap added to the previous time and compared exactly (no floating
      point day fractions): in whole seconds, or microseconds when needed. #}
  {%- set seconds = s.session_gap_minutes * 60 %}
  {%- if seconds == seconds | int %}
    {%- set gap_end = dbt.dateadd('second', seconds | int, 'previous_event_at') %}
  {%- else %}
    {%- set gap_end = dbt.dateadd('microsecond', (seconds * 1000000) | round | int, 'previous_event_at') %}
  {%- endif %}
select
    {{ columns | join(', ') }},
    case when group_id is not null
         then group_id || '@' || cast(session_start_at as {{ dbt.type_string() }}) end as group_id
from (
    select
        *,
        {#- Times only grow along the order, so the latest start so far is
            the start of the current session. #}
        max(case when starts_session = 1 then event_at end) over (
            {{ ordered }} rows between unbounded preceding and current row
        ) as session_start_at
    from (
        select
            *,
            case when previous_event_at is null
                   or event_at > {{ gap_end }}
                 then 1 else 0 end as starts_session
        from (
            select *, lag(event_at) over ({{ ordered }}) as previous_event_at
            from {{ relation }}
        ) as with_previous
    ) as with_starts
) as with_sessions
  {%- endif %}
{% endmacro %}
