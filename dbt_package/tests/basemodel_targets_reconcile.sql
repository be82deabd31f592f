-- One target row per history row, and the future events counted in the
-- targets are exactly the staged events inside each horizon of an entity
-- that has a history at that split.
with targets as (
    select split_at, count(*) as target_rows, sum(n_future_events) as future_events
    from {{ ref('basemodel_entity_targets') }}
    group by split_at
),

histories as (
    select split_at, count(*) as history_rows
    from {{ ref('basemodel_entity_history') }}
    group by split_at
),

future_events as (
    select splits.split_at, count(*) as future_events
    from {{ ref('basemodel_stg_events') }} as events
    inner join {{ ref('basemodel_splits') }} as splits
        on events.event_at > splits.split_at
        and events.event_at <= splits.horizon_end_at
    inner join {{ ref('basemodel_entity_history') }} as history
        on history.split_at = splits.split_at
        and history.entity_id = events.entity_id
    group by splits.split_at
)

select
    histories.split_at,
    histories.history_rows,
    targets.target_rows,
    targets.future_events,
    future_events.future_events as expected_future_events
from histories
left join targets
    on targets.split_at = histories.split_at
left join future_events
    on future_events.split_at = histories.split_at
where targets.target_rows is null
   or targets.target_rows <> histories.history_rows
   or targets.future_events <> coalesce(future_events.future_events, 0)
