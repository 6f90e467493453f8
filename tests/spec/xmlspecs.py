"""Inline Plush XML specs for the spec tests: one valid spec using every element, and a template.

``TEMPLATE`` is a small valid spec with holes (``{software}``, ``{components}``, ``{app}``, ``{blocks}``,
``{cbs}``) that a test fills with a fragment to provoke one problem; :func:`line_of` finds the line of a
marker so tests assert the reported line without counting by hand.
"""

from __future__ import annotations

FULL = """<?xml version="1.0"?>
<plush>
  <project name="filedist">
    <software name="sw" type="tar">
      <package name="p1" type="web">
        <path>http://example.org/b.tar</path>
        <dest>b.tar</dest>
      </package>
    </software>
    <component name="senders">
      <rspec>
        <num_hosts min="2" max="4"/>
        <require attr="cpu_mhz" min="1000" max="4000.5"/>
        <require attr="site" equals="ucsd"/>
        <max_load>4.0</max_load>
        <min_free_mem>512</min_free_mem>
      </rspec>
      <software name="sw"/>
      <resources>
        <resource type="local" group="lab"/>
        <resource type="ssh"/>
      </resources>
    </component>
    <component name="receivers">
      <rspec><num_hosts>3</num_hosts></rspec>
    </component>
    <application_block name="app" service="1" reconnect_interval="300" on_failure="restart_process">
      <execution>
        <component_block name="senders">
          <component name="senders"/>
          <process_block name="serve">
            <process name="server">
              <path>python3</path>
              <cmdline><arg>-m</arg><arg>http.server</arg><arg> spaced </arg></cmdline>
              <cwd>www</cwd>
              <env name="PORT">8000</env>
              <stdin>in.txt</stdin>
              <stdout>out.log</stdout>
              <stderr>err.log</stderr>
            </process>
            <exit_policy code="3" action="ignore"/>
            <exit_policy code="nonzero" action="restart_process" max_restarts="2"/>
            <liveness_monitor interval="2.5">
              <path>curl</path>
              <cmdline><arg>localhost:8000</arg></cmdline>
            </liveness_monitor>
            <output>*.log</output>
            <output>results/*</output>
          </process_block>
          <barrier_block name="ready" max="2" threshold="0.9" timeout="30" adaptive="1">
            <predecessor name="serve"/>
          </barrier_block>
        </component_block>
        <component_block name="receivers">
          <component name="receivers"/>
          <barrier_block name="ready" max="2" threshold="0.9" timeout="30" adaptive="1"/>
          <barrier_block name="gate" type="semaphore" capacity="4" until="download">
            <predecessor name="ready"/>
          </barrier_block>
          <process_block name="download">
            <predecessor name="gate"/>
            <process name="get"><path>wget</path></process>
          </process_block>
          <workflow_block name="crunch">
            <predecessor name="download"/>
            <data_file>chunks/part1.txt</data_file>
            <data_file>chunks/part2.txt</data_file>
            <process_block name="task">
              <process name="wc"><path>wc</path><cmdline><arg>-l</arg></cmdline></process>
            </process_block>
          </workflow_block>
        </component_block>
      </execution>
    </application_block>
  </project>
</plush>
"""

TEMPLATE = """<plush>
  <project name="demo">
    <software name="sw" type="tar">
      <package name="p1" type="local"><path>b.tar</path></package>
    </software>
{software}
    <component name="c1">
      <rspec><num_hosts min="1" max="3"/></rspec>
      <software name="sw"/>
      <resources><resource type="local"/></resources>
    </component>
{components}
    <application_block name="app"{app}>
      <execution>
        <component_block name="cb">
          <component name="c1"/>
          <process_block name="first">
            <process name="p"><path>true</path></process>
          </process_block>
{blocks}
        </component_block>
{cbs}
      </execution>
    </application_block>
  </project>
</plush>
"""


def spec(*, software: str = "", components: str = "", app: str = "", blocks: str = "", cbs: str = "") -> str:
    """The template with its holes filled."""
    return TEMPLATE.format(software=software, components=components, app=app, blocks=blocks, cbs=cbs)


def line_of(text: str, marker: str, nth: int = 0) -> int:
    """1-based line of the ``nth`` occurrence of ``marker`` in ``text``."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(marker, at + 1)
    return text.count("\n", 0, at) + 1
