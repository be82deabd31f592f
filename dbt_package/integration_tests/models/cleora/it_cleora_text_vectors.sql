{#- basemodel.cleora_vectors on the text keys of the seed graph (enabled with
    basemodel_cleora_enabled; compared with CleoraEmbedder by
    tests/test_cleora_sql.py). -#}
{{ config(enabled=var('basemodel_cleora_enabled', false)) }}
{%- set c = basemodel.cleora_settings() %}

with incidence as (
    {{ basemodel.cleora_incidence(ref('cleora_graph_edges'), 'edge_key', 'item', is_list=false) | indent(4) }}
)

{{ basemodel.cleora_vectors('incidence', c.n_components, c.n_iter, c.seed) }}
