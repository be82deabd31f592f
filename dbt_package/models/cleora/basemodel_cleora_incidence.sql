{#- The hypergraph of basemodel_cleora_vectors: one row per (hyperedge,
    item) of the basemodel_cleora_item_column lists of basemodel_hyperedges. -#}
{{ config(enabled=var('basemodel_cleora_enabled', false)) }}
{%- set c = basemodel.cleora_settings() %}

{{ basemodel.cleora_incidence(
    ref('basemodel_hyperedges'),
    edge_columns=['entity_id', 'group_id'],
    item_column=c.item_column ~ '_items',
) }}
