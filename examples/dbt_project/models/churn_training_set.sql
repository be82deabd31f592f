{#- One row per (split, customer): RFM features and the decayed product history from the
    basemodel package's histories, with the churn label from its targets. Only splits whose
    30-day target window is fully observed, and only customers of the churn population (active
    in the last `basemodel_active_days` before the cut-off): those long gone have no label. -#}
select
    history.split_at,
    history.entity_id as customer_id,
    history.days_since_last_event as recency_days,
    history.days_since_first_event as tenure_days,
    history.n_events as frequency,
    history.total_amount as monetary,
    history.decay_weight_sum,
    history.product_items,
    history.product_weights,
    targets.churned,
    targets.future_spend
from {{ ref('basemodel_entity_history') }} as history
inner join {{ ref('basemodel_entity_targets') }} as targets
    on targets.split_at = history.split_at
    and targets.entity_id = history.entity_id
where targets.is_horizon_complete
    and targets.in_churn_population = 1
