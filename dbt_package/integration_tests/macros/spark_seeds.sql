{#-
  Seeds on Spark. The seeds' column types are written in DuckDB / PostgreSQL
  words (varchar, float8), which Spark does not have: spark_seed_types reads
  them as Spark types, for the table and for the cast of every cell.

  dbt-spark's own row loader formats each CSV cell into the SQL as '<value>':
  under the session method a NULL cell arrives as the string 'None', and a
  quote or backslash in a cell breaks the statement. Here a NULL cell is a
  typed NULL and every other cell travels as a binary literal of its UTF-8
  bytes (X'<hex digits>', which nothing in the data can end), read back as a
  string and cast to the column's type by Spark: the malformed raw values of
  the seeds reach the table byte for byte.
-#}

{#- The Spark type of each column of the seed, in CSV order. -#}
{% macro spark_seed_types(model, agate_table) %}
  {%- set spark_names = {'varchar': 'string', 'text': 'string', 'float8': 'double', 'double precision': 'double'} -%}
  {%- set column_types = model['config'].get('column_types', {}) -%}
  {%- set types = [] -%}
  {%- for column_name in agate_table.column_names -%}
    {%- set type = column_types.get(column_name, adapter.convert_type(agate_table, loop.index0)) -%}
    {%- do types.append(spark_names.get(type | lower, type)) -%}
  {%- endfor -%}
  {{- return(types) -}}
{% endmacro %}

{% macro spark__create_csv_table(model, agate_table) %}
  {%- set types = spark_seed_types(model, agate_table) -%}
  {%- set quote_columns = model['config'].get('quote_columns', none) -%}
  {%- set sql -%}
    create table {{ this.render() }} (
      {%- for column_name in agate_table.column_names %}
      {{ adapter.quote_seed_column(column_name | string, quote_columns) }} {{ types[loop.index0] }}{{ ',' if not loop.last }}
      {%- endfor %}
    )
    {{ file_format_clause() }}
  {%- endset -%}
  {%- call statement('_') -%}{{ sql }}{%- endcall -%}
  {{- return(sql) -}}
{% endmacro %}

{% macro spark__load_csv_rows(model, agate_table) %}
  {%- set types = spark_seed_types(model, agate_table) -%}
  {%- set statements = [] -%}
  {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
    {%- set sql -%}
      insert into {{ this.render() }} values
      {%- for row in chunk %}
      ({% for value in row -%}
        {%- if value is none -%}
          cast(null as {{ types[loop.index0] }})
        {%- else -%}
          cast(cast(X'{{ (value | string).encode('utf-8').hex() }}' as string) as {{ types[loop.index0] }})
        {%- endif -%}
        {{- ', ' if not loop.last -}}
      {%- endfor %}){{ ',' if not loop.last }}
      {%- endfor %}
    {%- endset -%}
    {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
    {%- if loop.first -%}{%- do statements.append(sql) -%}{%- endif -%}
  {%- endfor -%}
  {#- The first statement stands for the seed's compiled SQL. -#}
  {{- return(statements[0] if statements else '') -}}
{% endmacro %}
