{#- basemodel.cleora_vectors on the integer keys of the seed graph: the
    integer hash path (enabled with basemodel_cleora_enabled). -#}
{{ config(enabled=var('basemodel_cleora_enabled', false)) }}
{%- set c = basemodel.cleora_settings() %}

with incidence as (
    {{ basemodel.cleora_incidence(ref('cleora_graph_edges'), 'edge_key', 'item_number', is_list=false) | indent(4) }}
)

{{ basemodel.cleora_vectors('incidence', c.n_components, c.n_iter, c.seed, key_type='integer') }}
