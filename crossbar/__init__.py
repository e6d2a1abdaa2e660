"""xbarsim.crossbar"""
