{#- Cleora vectors of the basemodel_cleora_item_column items, computed in the
    warehouse from basemodel_cleora_incidence: equal (to float32 rounding) to
    CleoraEmbedder(n_components, n_iter=n_iter, random_state=seed,
    columns=[item + '_items']).fit(basemodel_hyperedges).embeddings_. -#}
{{ config(enabled=var('basemodel_cleora_enabled', false)) }}
{%- set c = basemodel.cleora_settings() %}

{{ basemodel.cleora_vectors(
    ref('basemodel_cleora_incidence'),
    n_components=c.n_components,
    n_iter=c.n_iter,
    seed=c.seed,
    start_vectors=c.start_vectors,
) }}
