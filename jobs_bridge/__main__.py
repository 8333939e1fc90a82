from jobs_bridge.app import main

main()
