"""tritonab.splitter"""
